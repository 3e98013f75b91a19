"""Turning the asyncio client's return annotations into the blocking client's.

One rule, used both at run time (the derived methods' ``__signature__`` and
``__annotations__``) and by the stub generator (``_stubgen``), so the two cannot disagree:

- ``AsyncIterator[T]``, ``AsyncIterable[T]``, ``AsyncGenerator[T, S]`` become ``Iterator[T]``;
- ``AbstractAsyncContextManager[T]`` / ``AsyncContextManager[T]`` become
  ``AbstractContextManager[T]``;
- a top-level ``Awaitable[T]`` or ``Coroutine[A, B, T]`` (a plain method that returns an
  awaitable) becomes ``T``;
- ``AsyncRawResponses`` (the ``with_raw_response`` view) becomes ``RawResponses``;
- everything else is left as written.

Annotations are handled as source text (the async client uses postponed evaluation,
``from __future__ import annotations``), parsed and rewritten with :mod:`ast`.
"""

from __future__ import annotations

import ast
import collections.abc
import contextlib
from collections.abc import Mapping
from typing import Any, Final

from ._raw import RawResponses

__all__ = ["SYNC_NAMES", "SYNC_NAME_MODULES", "names_in", "sync_annotation"]

# Async name -> the name that replaces it.
_ITERATORS: Final = frozenset({"AsyncIterator", "AsyncIterable", "AsyncGenerator"})
_CONTEXT_MANAGERS: Final = frozenset({"AbstractAsyncContextManager", "AsyncContextManager"})
_AWAITABLES: Final = frozenset({"Awaitable", "Coroutine"})
# Views of the async client with a blocking twin class in codegen_sync (``with_raw_response``).
_VIEWS: Final = {"AsyncRawResponses": "RawResponses"}

# The names a rewritten annotation may introduce, their objects and where they come from.
SYNC_NAMES: Final[Mapping[str, Any]] = {
    "Iterator": collections.abc.Iterator,
    "AbstractContextManager": contextlib.AbstractContextManager,
    "RawResponses": RawResponses,
}
SYNC_NAME_MODULES: Final[Mapping[str, str]] = {
    "Iterator": "collections.abc",
    "AbstractContextManager": "contextlib",
    "RawResponses": "codegen_sync",
}


def _tail(node: ast.expr) -> str | None:
    """``AsyncIterator`` for ``AsyncIterator``, ``typing.AsyncIterator`` or ``t.AsyncIterator``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


class _ToSync(ast.NodeTransformer):
    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        name = _tail(node.value)
        if name == "AsyncGenerator" and isinstance(node.slice, ast.Tuple) and node.slice.elts:
            node.slice = node.slice.elts[0]  # the send type has no blocking counterpart
        self.generic_visit(node)
        return node

    def _renamed(self, node: ast.Name | ast.Attribute) -> ast.AST:
        name = _tail(node)
        if name in _ITERATORS:
            return ast.copy_location(ast.Name("Iterator", ast.Load()), node)
        if name in _CONTEXT_MANAGERS:
            return ast.copy_location(ast.Name("AbstractContextManager", ast.Load()), node)
        if name in _VIEWS:
            return ast.copy_location(ast.Name(_VIEWS[name], ast.Load()), node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return self._renamed(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        renamed = self._renamed(node)
        if renamed is node:
            self.generic_visit(node)
        return renamed


def _unwrap_awaitable(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Subscript) and _tail(node.value) in _AWAITABLES:
        if _tail(node.value) == "Coroutine":
            if isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 3:
                return node.slice.elts[2]
            return node
        return node.slice
    return node


def sync_annotation(text: str) -> str:
    """The blocking counterpart of a return annotation written as source text.

    >>> sync_annotation("AsyncIterator[User]")
    'Iterator[User]'
    >>> sync_annotation("Page[User]")
    'Page[User]'
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return text
    original = ast.unparse(tree.body)
    body = _ToSync().visit(_unwrap_awaitable(tree.body))
    result = ast.unparse(ast.fix_missing_locations(body))
    # Keep the author's spelling when nothing changed (ast.unparse normalizes quotes etc.).
    return text if result == original else result


def names_in(text: str) -> set[str]:
    """The top-level names an annotation refers to (``typing`` for ``typing.Any``)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
    return found
