"""``NOT_GIVEN``: an argument left out, told apart from one given as ``None``.

For a time limit ``None`` is a value of its own, "no limit", so "keep what the client has"
needs another default. As in openai-python and anthropic-sdk-python: a method's
``timeout=`` / ``deadline=``, ``with_options(timeout=..., deadline=...)`` and the
constructor's ``timeout=`` default to ``NOT_GIVEN`` (the client's value, or the SDK's
default), and ``None`` removes the limit. The one instance is falsy and prints as its name,
so signatures and the sync stub read ``timeout: ... | NotGiven = NOT_GIVEN``.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["NOT_GIVEN", "NotGiven"]


@final
class NotGiven:
    """The type of :data:`NOT_GIVEN`: an argument the caller left out."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:  # copies and pickles stay the one instance
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
