"""``codegen-api``: the Codegen API from the terminal.

The console script calls :func:`main`; ``python -m codegen_async.cli`` does the same.
Tables are drawn with rich (the ``cli`` extra), imported only when something is drawn.
"""

from __future__ import annotations

from ._app import build_parser, main
from ._errors import ExitCode

__all__ = ["ExitCode", "build_parser", "main"]
