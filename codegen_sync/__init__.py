"""codegen_sync: the blocking client of the Codegen API, on the same asyncio core.

>>> from codegen_sync import Agent
>>> with Agent() as agent:                  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
...     run = agent.run("Fix the flaky test in tests/test_api.py")
...     print(agent.get_run(run.id).status)

Every public name of ``codegen_async`` (errors, models, ``RateLimits``, ``Timeout``, ...) is
importable from here too.
"""

import codegen_async
from codegen_async import *  # noqa: F403 - re-export the core's public names

from ._agent import Agent
from ._raw import RawResponses

__all__ = ["Agent", "RawResponses"]
__all__ += codegen_async.__all__
