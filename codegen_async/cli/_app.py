"""Argument parsing and dispatch of ``codegen-api``.

Global options (``--json``, ``--base-url``, ``--org-id``, ``--token``, ...) may be given
before or after the subcommand. Each subcommand is an ``async`` function of
``codegen_async.cli._commands``; this module turns their failures into one line on standard
error and an exit status (``codegen_async.cli._errors``), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from .._config import ENV_BASE_URL, ENV_ORG_ID, ENV_RATE_LIMIT_SCALE, ENV_TOKEN
from ._errors import ExitCode, describe_error, redact
from ._output import Output

__all__ = ["build_parser", "main"]

PROG = "codegen-api"

_DESCRIPTION = """\
The Codegen API from the terminal: users, agent runs, sandbox log analysis, setup
commands, Slack tokens, repositories, organizations; plus `demo` (the documentation's
sandbox workflow against an embedded emulator, no credentials needed) and `emulator`
(serve the emulated API for your own tests)."""

_EPILOG = f"""\
environment:
  {ENV_TOKEN}      API token (prefer it to --token, which other users can see in ps)
  {ENV_ORG_ID}         default organization id
  {ENV_BASE_URL}   API root (default https://api.codegen.com)
  {ENV_RATE_LIMIT_SCALE}  factor for quota windows and poll intervals (default 1)

exit status:
  0 success, 1 a waited-for run did not complete, 2 usage or configuration error,
  3 API error, 4 rate limited (429), 5 wait timed out, 70 unexpected error,
  74 the result could not be written to --output (it was printed),
  130 interrupted, 141 output pipe closed"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _limit(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every subcommand accepts; ``suppress`` keeps a subparser from resetting
    a value given before the subcommand."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help=f"API root (default: ${ENV_BASE_URL})",
    )
    group.add_argument(
        "--org-id",
        metavar="ID",
        type=_non_negative_int,
        default=default(None),
        help=f"organization id (default: ${ENV_ORG_ID})",
    )
    group.add_argument(
        "--token", metavar="TOKEN", default=default(None), help=f"API token (default: ${ENV_TOKEN})"
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document on stdout instead of tables",
    )
    group.add_argument(
        "--max-retries",
        metavar="N",
        type=_non_negative_int,
        default=default(2),
        help="retries of a failed request (default: 2)",
    )
    group.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=default(60.0),
        help="time limit of one request (default: 60)",
    )
    group.add_argument(
        "--rate-limit-scale",
        metavar="F",
        type=_positive_float,
        default=default(None),
        help="multiply every quota window and poll interval by F, like an emulator's "
        f"--time-scale (default: ${ENV_RATE_LIMIT_SCALE}, else 1)",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=default(False),
        help="allow an http:// API root that is not on this machine (sends the token "
        "in clear text)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show a traceback for unexpected errors",
    )


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=None,
        help="give up waiting after this long (exit status 5); default: no limit",
    )
    parser.add_argument(
        "--poll-interval",
        metavar="SECONDS",
        type=_positive_float,
        default=None,
        help="seconds between status checks (default: the SDK's)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``codegen-api`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} (codegen-async) {__version__}"
    )
    _add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kwargs)
        _add_global_options(p, suppress=True)
        return p

    command("me", "show the user the API token belongs to")

    p = command("users", "list the organization's users")
    p.add_argument(
        "--role",
        type=str.upper,
        choices=("ADMIN", "MANAGER", "MEMBER"),
        help="only users with this role (case-insensitive)",
    )

    p = command("user", "show one user of the organization")
    p.add_argument("user_id", metavar="USER_ID", type=_non_negative_int)

    p = command("runs", "list the organization's agent runs, newest first")
    p.add_argument("--limit", type=_limit, default=20, help="at most this many (default: 20)")
    p.add_argument("--user-id", type=_non_negative_int, help="only runs started by this user")
    p.add_argument(
        "--source-type",
        type=str.upper,
        metavar="TYPE",
        help="only runs from this source (API, SLACK, GITHUB, SETUP_COMMANDS, ...)",
    )

    p = command("run", "start an agent run")
    p.add_argument("prompt", metavar="PROMPT", help="what the agent should do ('-': read stdin)")
    p.add_argument("--repo-id", type=_non_negative_int, help="repository to work in")
    p.add_argument("--metadata", metavar="JSON", help="JSON object stored with the run")
    p.add_argument("--model", help="model name (default: the organization's)")
    p.add_argument("--agent-type", choices=("codegen", "claude_code"))
    p.add_argument("--wait", action="store_true", help="wait for the run to finish")
    _add_wait_options(p)

    p = command("wait", "wait for agent runs to finish, with a live progress display")
    p.add_argument("run_ids", metavar="ID", type=_non_negative_int, nargs="+")
    _add_wait_options(p)

    p = command("logs", "show an agent run's logs")
    p.add_argument("run_id", metavar="ID", type=_non_negative_int)
    p.add_argument(
        "--limit", type=_limit, default=100, help="entries per page, 1-100 (default: 100)"
    )
    p.add_argument("--skip", type=_non_negative_int, default=0, help="entries to skip")
    p.add_argument("--reverse", action="store_true", help="newest first")

    p = command("analyze-logs", "start an AI analysis of a sandbox's setup logs")
    p.add_argument("sandbox_id", metavar="SANDBOX_ID", type=_non_negative_int)
    p.add_argument("--wait", action="store_true", help="wait for the analysis and show it")
    _add_wait_options(p)

    p = command("setup-commands", "generate setup commands for a repository")
    p.add_argument("repo_id", metavar="REPO_ID", type=_non_negative_int)
    p.add_argument("--prompt", help="custom instructions for the generation")
    p.add_argument(
        "--trigger-source", default="setup-commands", help="source label (default: setup-commands)"
    )
    p.add_argument("--wait", action="store_true", help="wait for the commands and show them")
    p.add_argument(
        "--output", metavar="FILE", help="write the generated commands to FILE (implies --wait)"
    )
    _add_wait_options(p)

    command("slack-token", "generate a single-use token that links a Slack account")
    command("repos", "list the organization's repositories")
    command("orgs", "list the organizations of the token's user")

    sub.add_parser(
        "emulator",
        help="serve the emulated API on loopback (options: codegen-api emulator --help)",
        add_help=False,
    )

    p = command(
        "demo",
        "run the documentation's sandbox workflow against an embedded emulator "
        "(no credentials, no network)",
    )
    p.add_argument(
        "--time-scale",
        type=_positive_float,
        default=0.05,
        help="emulator time per documented second (default: 0.05, about 10 s in all)",
    )
    p.add_argument("--seed", type=int, default=0, help="emulator seed (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``codegen-api`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(args_list)
        if args.command != "emulator" and extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE

    if args.command == "emulator":
        from ._commands import serve_emulator

        return serve_emulator(extra)

    output = Output(json_mode=args.json)
    from ._commands import COMMANDS, Context

    ctx = Context(args, output)
    try:
        return asyncio.run(COMMANDS[args.command](ctx))
    except KeyboardInterrupt:
        output.error_line("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``codegen-api runs | head``): stop quietly, and keep the
        # interpreter's final flush from complaining about the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return ExitCode.BROKEN_PIPE
    except Exception as exc:
        if args.debug:
            raise
        try:
            code, message = describe_error(exc, org_id=ctx.org_id)
        except TypeError:
            code = ExitCode.UNEXPECTED
            message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
        output.error_line(redact(message, ctx.token))
        return code
