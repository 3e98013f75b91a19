"""The wrapping rules: what the blocking client makes of each public member of the async one.

One table, read by ``_wrap`` (which builds the blocking members at import time) and by
``_stubgen`` (which writes what type checkers see of them), so the two cannot disagree:

=================================  =============  ==============================================
member of the async class          twin           on the blocking class
=================================  =============  ==============================================
a name in :data:`REPLACED`         ``REPLACED``   the blocking client's own method (``close``)
a property                         ``PROPERTY``   forwarded to the async client
a static or class method           ``OMITTED``    left out (none exists; the twin test would say)
a function returning its own class ``DERIVE``     runs at once; returns a blocking client over
                                                  the result (``with_options``)
an async generator function        ``ITERATE``    returns a ``SyncIterator`` over it
a coroutine function               ``CALL``       runs on the loop; its result made blocking
another function                   ``INVOKE``     runs on the loop thread; an awaitable awaited
anything else                      ``CONSTANT``   the same object
=================================  =============  ==============================================

Return annotations follow one more shared rule, :func:`~._annotations.sync_annotation`.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "METHODS",
    "REPLACED",
    "Twin",
    "public_members",
    "returns_own_class",
    "twin_of",
    "wrapped_members",
]


class Twin(enum.Enum):
    """What a member of the async class becomes on the blocking class."""

    REPLACED = "replaced by the blocking client's own method"
    PROPERTY = "forwarded to the async client"
    OMITTED = "left out"
    DERIVE = "returns a blocking client over the async client it returns"
    ITERATE = "returns a blocking iterator"
    CALL = "runs on the loop, result made blocking"
    INVOKE = "runs on the loop thread, awaitable result awaited"
    CONSTANT = "the same object"


# Members of the async class that the blocking client replaces with its own (close()).
REPLACED: Final = frozenset({"aclose"})
# The twins that are methods (a ``def`` in the stub).
METHODS: Final = frozenset({Twin.DERIVE, Twin.ITERATE, Twin.CALL, Twin.INVOKE})


def returns_own_class(member: Any) -> bool:
    """A plain function annotated as returning the class it is defined in (``with_options``)."""
    if not inspect.isfunction(member) or inspect.iscoroutinefunction(member):
        return False
    owner = member.__qualname__.rpartition(".")[0]
    return bool(owner) and member.__annotations__.get("return") == owner


# The table, first matching row wins; no row matches a constant.
_RULES: Final[tuple[tuple[Callable[[str, Any], bool], Twin], ...]] = (
    (lambda name, member: name in REPLACED, Twin.REPLACED),
    (lambda name, member: isinstance(member, property), Twin.PROPERTY),
    (lambda name, member: isinstance(member, (staticmethod, classmethod)), Twin.OMITTED),
    (lambda name, member: returns_own_class(member), Twin.DERIVE),
    (lambda name, member: inspect.isasyncgenfunction(member), Twin.ITERATE),
    (lambda name, member: inspect.iscoroutinefunction(member), Twin.CALL),
    (lambda name, member: inspect.isfunction(member), Twin.INVOKE),
)


def twin_of(name: str, member: Any) -> Twin:
    """What the public member ``name`` of the async class becomes on the blocking class."""
    for matches, twin in _RULES:
        if matches(name, member):
            return twin
    return Twin.CONSTANT


def public_members(cls: type[Any]) -> dict[str, Any]:
    """The public attributes defined by ``cls`` and its bases (not ``object``), unbound."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                members[name] = value
    return members


def wrapped_members(async_cls: type[Any]) -> list[tuple[str, Any, Twin]]:
    """Each public member of ``async_cls`` with its twin, in definition order."""
    return [
        (name, member, twin_of(name, member)) for name, member in public_members(async_cls).items()
    ]
