"""``Agent.with_raw_response``: the blocking face of ``AsyncAgent.with_raw_response``.

Written once for every method: an attribute lookup finds the async client's raw method (so
the same methods are allowed and refused) and returns a function that runs it on the
client's loop and hands back the ``RawResponse``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codegen_async import RawResponse

__all__ = ["RawResponses"]


class RawResponses:
    """``agent.with_raw_response``: every one-request method, returning a ``RawResponse``.

    ``raw = agent.with_raw_response.get_run(run_id)``; ``raw.parse()`` is the ``AgentRun``
    that ``agent.get_run(run_id)`` returns. See ``AsyncAgent.with_raw_response``.
    """

    __slots__ = ("_agent",)

    def __init__(self, agent: Any) -> None:
        self._agent = agent

    def __getattr__(self, name: str) -> Callable[..., RawResponse[Any]]:
        portal, client = self._agent._bound()
        method = getattr(client.with_raw_response, name)  # refuses many-request methods

        def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            result: RawResponse[Any] = portal.call(method(*args, **kwargs))
            return result

        call.__name__ = name
        return call

    def __dir__(self) -> list[str]:
        return dir(self._agent._state.client.with_raw_response)

    def __repr__(self) -> str:
        return f"<RawResponses of {self._agent!r}>"
