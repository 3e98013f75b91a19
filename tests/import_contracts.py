"""An import-linter contract type ``acyclic``: no import cycle at all between the modules.

import-linter's own ``acyclic_siblings`` finds cycles between the children of each package
(imports of descendants squashed into their child); it cannot see a cycle that runs through a
package's own ``__init__`` (``codegen_async`` imports ``_transport``, which imported
``codegen_async`` for ``__version__``), because the package is no sibling of its children. This
contract looks at the whole graph: it finds its strongly connected components (Tarjan's
algorithm, iterative) and reports one concrete cycle of each. Registered in pyproject.toml's
``contract_types``; ``lint-imports`` runs from the repository root, which it puts on
``sys.path``, so ``tests.import_contracts`` is importable there.

Options: ``packages`` (the root packages whose modules are checked) and ``ignore_imports``
(exact ``importer -> imported`` pairs to leave out, each with a reason in a comment).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from importlinter import Contract, ContractCheck, fields, output

__all__ = ["AcyclicContract", "cycle_through", "strongly_connected"]


def strongly_connected(
    nodes: Iterable[str], edges: Callable[[str], Iterable[str]]
) -> list[list[str]]:
    """The components of more than one node, each sorted, in a stable order."""
    nodes = sorted(nodes)
    known = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        # Each frame: a node and the iterator over its successors not yet visited.
        work = [(root, iter(sorted(n for n in edges(root) if n in known)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(n for n in edges(succ) if n in known))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def cycle_through(
    start: str, members: set[str], edges: Callable[[str], Iterable[str]]
) -> list[str]:
    """A shortest cycle from ``start`` back to it, inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(edges(node)):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if succ in members and succ not in came_from:
                came_from[succ] = node
                queue.append(succ)
    return [start]  # not reached for a component of more than one module


class AcyclicContract(Contract):
    """No import cycle between any modules of ``packages`` (see the module docstring)."""

    packages = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        roots = tuple(self.packages)  # type: ignore[call-overload]
        ignored = set()
        for text in self.ignore_imports or ():  # type: ignore[attr-defined]
            importer, _, imported = str(text).partition("->")
            ignored.add((importer.strip(), imported.strip()))
        modules = {m for m in graph.modules if m.split(".")[0] in roots}

        def edges(module: str) -> set[str]:
            direct = graph.find_modules_directly_imported_by(module)
            return {m for m in direct if m in modules and (module, m) not in ignored}

        cycles = [
            cycle_through(component[0], set(component), edges)
            for component in strongly_connected(modules, edges)
        ]
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(" -> ".join([*cycle, cycle[0]]), bold=False)
        output.print_warning("Break each cycle: move what both sides need to a module both import.")
