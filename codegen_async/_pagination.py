"""Walking every item of a paginated list, page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ._endpoints import LIMIT
from .models import Page

__all__ = ["iterate_pages"]

T = TypeVar("T")


async def iterate_pages(
    fetch: Callable[[int, int], Awaitable[Page[T]]], *, page_size: int = 100, start: int = 0
) -> AsyncIterator[T]:
    """Yield every item of a list, fetching ``page_size`` items a request.

    Items are de-duplicated by ``id`` where they have one: on a newest-first list (agent
    runs), items created during the walk push older ones onto the next page, which would
    otherwise be yielded twice. A page that brings nothing new ends the walk: a server
    that keeps answering the same page (ignoring ``skip``) would otherwise be asked
    ``total / page_size`` times for nothing.
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, got {type(page_size).__name__}")
    if not LIMIT.minimum <= page_size <= LIMIT.maximum:  # type: ignore[operator]
        raise ValueError(
            f"page_size must be between {LIMIT.minimum} and {LIMIT.maximum}, got {page_size}"
        )
    skip = start
    seen: set[Any] = set()
    while True:
        page = await fetch(skip, page_size)
        new = 0
        for item in page.items:
            key = getattr(item, "id", None)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            new += 1
            yield item
        skip += len(page.items)
        if not new or skip >= page.total:
            return
