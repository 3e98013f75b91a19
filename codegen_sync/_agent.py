"""``Agent``: the blocking client of the Codegen API, derived from ``AsyncAgent``.

This module is all there is to it: the methods come from ``codegen_async.AsyncAgent`` by
introspection (``_wrap``). Type checkers read ``_agent.pyi``, generated from the same class
by ``python -m codegen_sync._stubgen``.
"""

from __future__ import annotations

import inspect

from codegen_async import AsyncAgent

from ._wrap import SyncClient

__all__ = ["Agent"]


class Agent(SyncClient, wraps=AsyncAgent):
    """Blocking client of the Codegen API: every method of ``AsyncAgent``, without ``await``.

    Calls run on one background event loop shared by every ``Agent`` of the process
    (started on first use, stopped at exit), so the client works the same in scripts,
    threads, notebooks and code called from a running event loop; Ctrl-C cancels the call
    in flight. Paged lists have ``iter_...`` companions that are plain iterators.

    It takes every argument of ``AsyncAgent`` except ``session=`` (an aiohttp session is
    bound to the loop that made it): networks are set with ``proxy=``, ``trust_env=``,
    ``ssl=`` and ``connection_limit=``.

    Use it as ``with Agent() as agent:``, or call :meth:`close` when done.
    """


def _args_section(doc: str | None) -> str:
    """The ``Args:`` block of a Google-style docstring ('' if it has none)."""
    lines: list[str] = []
    for line in inspect.cleandoc(doc or "").splitlines():
        if line.strip() == "Args:":
            lines.append(line)
        elif lines and line and not line.startswith(" "):
            break
        elif lines:
            lines.append(line)
    return "\n".join(lines).rstrip()


# The constructor's arguments are documented once, on AsyncAgent.
_args = _args_section(AsyncAgent.__doc__)
if _args:
    Agent.__doc__ = f"{inspect.cleandoc(Agent.__doc__ or '')}\n\n{_args}\n"
