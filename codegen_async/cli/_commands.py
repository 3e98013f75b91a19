"""The subcommands of ``codegen-api``: one ``async`` function each, over :class:`AsyncAgent`.

A command fetches what it needs, then hands the result to :class:`Output`, which prints
it as a table or, with ``--json``, as one JSON document. Failures propagate as the SDK's
typed errors (or :class:`CLIError`); ``_app.main`` turns them into one line and an exit
status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import stat
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._client import AsyncAgent
from .._config import ENV_ORG_ID, ENV_TOKEN
from .._ratelimit import RateLimits
from .._validation import check_metadata, check_prompt, check_text
from ..errors import ConfigurationError
from ..models import AgentRun, Page, SourceType, User
from ._errors import CLIError, ExitCode
from ._output import (
    Output,
    format_time,
    kv_table,
    literal,
    make_table,
    plain,
    shorten,
    status_text,
    styled,
    to_json,
)
from ._progress import run_board

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

__all__ = ["COMMANDS", "Context", "serve_emulator"]

SOURCE_TYPES = tuple(s.value for s in SourceType)
T = TypeVar("T")


class Context:
    """What every command needs: the parsed arguments, the output, and the settings."""

    def __init__(self, args: argparse.Namespace, output: Output) -> None:
        self.args = args
        self.output = output
        token = args.token if args.token is not None else os.environ.get(ENV_TOKEN)
        self.token: str | None = token.strip() if token and token.strip() else None
        self.org_id: int | None = args.org_id
        self._org_problem: str | None = None
        if self.org_id is None:
            raw = os.environ.get(ENV_ORG_ID, "").strip()
            if raw:
                try:
                    self.org_id = int(raw)
                except ValueError:
                    self._org_problem = f"{ENV_ORG_ID} must be an integer organization id"

    def require_org(self) -> int:
        """The organization id, or a usage error that says how to give one."""
        if self._org_problem is not None:
            raise CLIError(self._org_problem)
        if self.org_id is None:
            raise CLIError(
                f"no organization id: set the {ENV_ORG_ID} environment variable or pass --org-id"
            )
        return self.org_id

    def agent(self) -> AsyncAgent:
        """A client with the command line's settings over the environment's."""
        if self.token is None:
            raise CLIError(
                f"no API token: set the {ENV_TOKEN} environment variable or pass --token"
            )
        if self._org_problem is not None:
            raise CLIError(self._org_problem)
        scale: float | None = self.args.rate_limit_scale
        try:
            return AsyncAgent(
                self.token,
                self.org_id,
                base_url=self.args.base_url,
                max_retries=self.args.max_retries,
                timeout=self.args.request_timeout,
                # None: the client's default, which reads CODEGEN_RATE_LIMIT_SCALE.
                rate_limits=None if scale is None else RateLimits.documented(scale=scale),
                allow_insecure_http=self.args.allow_insecure_http,
            )
        except ConfigurationError as exc:
            # The SDK speaks of its keyword argument; here the switch is a flag.
            message = str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
            raise CLIError(message) from None


Command = Callable[[Context], Coroutine[Any, Any, int]]


def _checked(check: Callable[[str, Any], T], name: str, value: Any) -> T:
    """``check(name, value)`` (one of the SDK's argument checks), its refusal a usage error."""
    try:
        return check(name, value)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


# --- rendering helpers -----------------------------------------------------------------
def _user_fields(user: User) -> dict[str, Any]:
    return {
        "ID": user.id,
        "Name": user.full_name or "",
        "GitHub": f"@{user.github_username} (id {user.github_user_id})",
        "Email": user.email or "",
        "Role": str(user.role or ""),
        "Avatar": user.avatar_url or "",
    }


def _wait_hint(run_id: int) -> Text:
    return plain(f"wait for it: codegen-api wait {run_id}", "dim")


def _run_fields(run: AgentRun) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "Agent run": run.id,
        "Status": status_text(run.status),
        "Source": str(run.source_type or ""),
        "Created": format_time(run.created_at),
        "Web URL": run.web_url or "",
    }
    if run.metadata:
        fields["Metadata"] = json.dumps(run.metadata, sort_keys=True)
    if run.summary:
        fields["Summary"] = run.summary
    for pr in run.github_pull_requests or ():
        fields.setdefault("Pull requests", "")
        fields["Pull requests"] += f"{pr.title or pr.id}: {pr.url or ''}\n"
    return fields


def _run_view(run: AgentRun, *, title: str, syntax: str | None = None) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel
    from rich.syntax import Syntax

    parts: list[RenderableType] = [kv_table(_run_fields(run), title=title)]
    if run.result:
        body: RenderableType = (
            Syntax(literal(run.result), syntax, word_wrap=True) if syntax else plain(run.result)
        )
        parts.append(Panel(body, title="Result", title_align="left"))
    return Group(*parts)


def _exit_for(runs: Sequence[AgentRun]) -> int:
    """0 when every run completed, else 1 (failed, cancelled)."""
    ok = all(run.status == "completed" for run in runs)
    return ExitCode.OK if ok else ExitCode.RUN_NOT_COMPLETED


async def _wait(
    ctx: Context, agent: AsyncAgent, run_ids: Sequence[int], *, title: str
) -> Mapping[int, AgentRun]:
    with run_board(ctx.output, run_ids, title=title) as board:
        return await agent.wait_for_runs(
            run_ids,
            timeout=ctx.args.timeout,
            poll_interval=ctx.args.poll_interval,
            on_update=board.update,
        )


# --- users -----------------------------------------------------------------------------
async def cmd_me(ctx: Context) -> int:
    async with ctx.agent() as agent:
        user = await agent.get_current_user()
    ctx.output.result(to_json(user), lambda: kv_table(_user_fields(user), title="Current user"))
    return ExitCode.OK


async def cmd_users(ctx: Context) -> int:
    org = ctx.require_org()
    role: str | None = ctx.args.role
    async with ctx.agent() as agent:
        users = [u async for u in agent.iter_users()]
    if role is not None:
        users = [u for u in users if u.role is not None and str(u.role) == role]

    def render() -> RenderableType:
        label = f" with role {role}" if role else ""
        return make_table(
            f"Users of organization {org}{label}: {len(users)}",
            ("ID", "Name", "GitHub", "Email", "Role"),
            (
                (u.id, u.full_name or "", f"@{u.github_username}", u.email or "", str(u.role or ""))
                for u in users
            ),
        )

    ctx.output.result(to_json(users), render)
    return ExitCode.OK


async def cmd_user(ctx: Context) -> int:
    ctx.require_org()
    async with ctx.agent() as agent:
        user = await agent.get_user(ctx.args.user_id)
    ctx.output.result(to_json(user), lambda: kv_table(_user_fields(user), title="User"))
    return ExitCode.OK


# --- agent runs ------------------------------------------------------------------------
async def cmd_runs(ctx: Context) -> int:
    org = ctx.require_org()
    args = ctx.args
    source = args.source_type
    if source is not None and source not in SOURCE_TYPES:
        raise CLIError(f"--source-type must be one of {', '.join(SOURCE_TYPES)}; got {source}")
    runs: list[AgentRun] = []
    total = 0
    async with ctx.agent() as agent:
        skip = 0
        while len(runs) < args.limit:
            page: Page[AgentRun] = await agent.list_runs(
                user_id=args.user_id,
                source_type=source,
                skip=skip,
                limit=min(100, args.limit - len(runs)),
            )
            total = page.total
            runs.extend(page.items)
            skip += len(page.items)
            if not page.items or skip >= page.total:
                break

    def render() -> RenderableType:
        return make_table(
            f"Agent runs of organization {org}: {len(runs)} of {total}, newest first",
            ("ID", "Status", "Source", "Created", "Summary"),
            (
                (
                    r.id,
                    status_text(r.status),
                    str(r.source_type or ""),
                    format_time(r.created_at),
                    shorten(r.summary or r.result, 50),
                )
                for r in runs
            ),
        )

    ctx.output.result(to_json(runs), render)
    return ExitCode.OK


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        # Python's json reads NaN and Infinity, which no JSON server accepts.
        value = json.loads(text, parse_constant=_not_json)
    except ValueError as exc:
        raise CLIError(f"--metadata is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CLIError('--metadata must be a JSON object, like \'{"ticket": "ENG-1"}\'')
    try:
        return check_metadata(value)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--{exc}") from None


def _stdin_text(what: str) -> str:
    """Standard input as UTF-8 text (bytes that are not UTF-8 are a usage error)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # stdin replaced by a text stream (tests, embedding)
        text: str = sys.stdin.read()
        return text
    data: bytes = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"{what} on standard input is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None


async def cmd_run(ctx: Context) -> int:
    ctx.require_org()
    args = ctx.args
    prompt: str = _stdin_text("the prompt") if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise CLIError("the prompt is empty")
    prompt = _checked(check_prompt, "the prompt", prompt)
    metadata = _metadata(args.metadata)
    model = None if args.model is None else _checked(check_text, "--model", args.model)
    async with ctx.agent() as agent:
        run = await agent.run(
            prompt,
            repo_id=args.repo_id,
            metadata=metadata,
            model=model,
            agent_type=args.agent_type,
        )
        if not args.wait:
            ctx.output.result(to_json(run), lambda: kv_table(_run_fields(run), title="Started"))
            ctx.output.note(_wait_hint(run.id))
            return ExitCode.OK
        run = (await _wait(ctx, agent, [run.id], title="Waiting for the agent run"))[run.id]
    ctx.output.result(to_json(run), lambda: _run_view(run, title="Agent run"))
    return _exit_for([run])


async def cmd_wait(ctx: Context) -> int:
    ctx.require_org()
    run_ids = list(dict.fromkeys(ctx.args.run_ids))
    async with ctx.agent() as agent:
        finished = await _wait(ctx, agent, run_ids, title=f"Waiting for {len(run_ids)} agent runs")
    runs = [finished[i] for i in run_ids]

    def render() -> RenderableType:
        return make_table(
            "Agent runs",
            ("ID", "Status", "Summary", "Web URL"),
            (
                (r.id, status_text(r.status), shorten(r.summary or r.result, 60), r.web_url or "")
                for r in runs
            ),
        )

    ctx.output.result(to_json(runs), render)
    return _exit_for(runs)


async def cmd_logs(ctx: Context) -> int:
    ctx.require_org()
    args = ctx.args
    async with ctx.agent() as agent:
        page = await agent.get_run_logs(
            args.run_id, skip=args.skip, limit=args.limit, reverse=args.reverse
        )

    def detail(entry: Any) -> str:
        text = entry.thought
        if not text and entry.observation is not None:
            obs = entry.observation
            text = obs if isinstance(obs, str) else json.dumps(obs, sort_keys=True)
        if not text and entry.tool_input is not None:
            text = json.dumps(entry.tool_input, sort_keys=True)
        return shorten(text, 80)

    def render() -> RenderableType:
        first = args.skip + 1 if page.logs else 0
        last = args.skip + len(page.logs)
        total = page.total_logs if page.total_logs is not None else "?"
        return make_table(
            f"Logs of agent run {page.id} ({page.status or 'unknown'}): "
            f"entries {first}-{last} of {total}",
            ("Time", "Type", "Tool", "Detail"),
            (
                (
                    format_time(e.created_at),
                    e.message_type or "",
                    e.tool_name or "",
                    detail(e),
                )
                for e in page.logs
            ),
        )

    ctx.output.result(to_json(page), render)
    return ExitCode.OK


# --- sandbox, setup commands, Slack ----------------------------------------------------
async def cmd_analyze_logs(ctx: Context) -> int:
    ctx.require_org()
    args = ctx.args
    async with ctx.agent() as agent:
        started = await agent.analyze_sandbox_logs(args.sandbox_id)
        if not args.wait:
            fields = {
                "Agent run": started.agent_run_id,
                "Status": status_text(started.status),
                "Message": started.message,
            }
            ctx.output.result(
                to_json(started), lambda: kv_table(fields, title="Log analysis started")
            )
            ctx.output.note(_wait_hint(started.agent_run_id))
            return ExitCode.OK
        run_id = started.agent_run_id
        run = (await _wait(ctx, agent, [run_id], title="Analysing sandbox logs"))[run_id]
    title = f"Log analysis of sandbox {args.sandbox_id}"
    ctx.output.result(to_json(run), lambda: _run_view(run, title=title))
    return _exit_for([run])


async def cmd_setup_commands(ctx: Context) -> int:
    ctx.require_org()
    args = ctx.args
    output = None if args.output is None else Path(args.output)
    if output is not None:
        # Refuse before the run is started (and its quota spent), not after it finished.
        await asyncio.to_thread(_check_writable, output)
    prompt = None if args.prompt is None else _checked(check_text, "--prompt", args.prompt)
    trigger = _checked(check_text, "--trigger-source", args.trigger_source)
    wait = args.wait or output is not None
    async with ctx.agent() as agent:
        started = await agent.generate_setup_commands(args.repo_id, prompt, trigger_source=trigger)
        if not wait:
            fields = {
                "Agent run": started.agent_run_id,
                "Status": status_text(started.status),
                "Web URL": started.url,
            }
            ctx.output.result(
                to_json(started), lambda: kv_table(fields, title="Setup-command generation started")
            )
            ctx.output.note(_wait_hint(started.agent_run_id))
            return ExitCode.OK
        run_id = started.agent_run_id
        run = (await _wait(ctx, agent, [run_id], title="Generating setup commands"))[run_id]
    problem: OSError | None = None
    if output is not None and run.status == "completed":
        try:
            await asyncio.to_thread(_write_script, output, run.result or "")
        except OSError as exc:
            problem = exc
    title = f"Setup commands for repository {args.repo_id}"
    # The result is shown first, whatever happens to the file: a finished run is never lost.
    ctx.output.result(to_json(run), lambda: _run_view(run, title=title, syntax="bash"))
    if problem is not None:
        ctx.output.error_line(
            f"cannot write {output}: {problem.strerror or problem}; the commands of agent "
            f"run {run.id} are printed above (codegen-api --json wait {run.id} shows them again)"
        )
        return ExitCode.OUTPUT_ERROR
    if output is not None:
        if run.status == "completed":
            ctx.output.note(styled(("✓", "green"), f" saved to {output}"))
        else:
            ctx.output.note(
                styled(("✗", "red"), f" nothing written to {output}: the run {run.status}")
            )
    return _exit_for([run])


def _check_writable(path: Path) -> None:
    """A usage error unless ``path`` can be written (its missing folders created).

    Tried, not only asked of ``os.access`` (which lets root through everywhere): the first
    missing folder is made and removed again, or the file is opened for appending (a new
    one is removed again), so that nothing is left behind.
    """
    if path.is_dir():
        raise CLIError(f"--output {path} is a directory")
    folder = path.parent
    missing = None
    while not folder.exists():
        folder, missing = folder.parent, folder
    if not folder.is_dir():
        raise CLIError(f"--output {path}: {folder} is not a directory")
    try:
        if missing is not None:
            missing.mkdir()
            missing.rmdir()
        elif path.exists():
            with path.open("ab"):
                pass
        else:
            with path.open("xb"):
                pass
            path.unlink()
    except OSError as exc:
        raise CLIError(f"--output {path}: {exc.strerror or exc}") from None


def _write_script(path: Path, text: str) -> None:
    """Write the setup script, executable by whoever may read it (``chmod +x``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    mode = path.stat().st_mode
    # A file we may write but not chmod (group-writable, another user's) is still saved,
    # which is what was asked; it runs with ``bash FILE``.
    with contextlib.suppress(OSError):
        path.chmod(mode | ((mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)) >> 2))


async def cmd_slack_token(ctx: Context) -> int:
    ctx.require_org()
    async with ctx.agent() as agent:
        token = await agent.generate_slack_connect_token()
    data = {
        **to_json(token),
        "expires_at": token.expires_at.isoformat(),
        "connect_message": token.connect_message,
    }

    def render() -> RenderableType:
        from rich.console import Group

        fields = {
            "Token": token.token,
            "Expires": f"in {token.expires_in_minutes} minutes "
            f"({token.expires_at.astimezone():%H:%M:%S}), single use",
            "Message": token.message,
        }
        return Group(
            kv_table(fields, title="Slack connect token"),
            plain("\nSend this to the Codegen bot in a Slack DM:"),
            plain(f"  {token.connect_message}", "bold"),
        )

    ctx.output.result(data, render)
    return ExitCode.OK


# --- organizations and repositories ----------------------------------------------------
async def cmd_repos(ctx: Context) -> int:
    org = ctx.require_org()
    async with ctx.agent() as agent:
        repos = [r async for r in agent.iter_repositories()]

    def render() -> RenderableType:
        return make_table(
            f"Repositories of organization {org}: {len(repos)}",
            ("ID", "Name", "Language", "Visibility", "Setup", "Archived"),
            (
                (
                    r.id,
                    r.full_name,
                    r.language or "",
                    r.visibility or "",
                    r.setup_status,
                    "yes" if r.archived else "",
                )
                for r in repos
            ),
        )

    ctx.output.result(to_json(repos), render)
    return ExitCode.OK


async def cmd_orgs(ctx: Context) -> int:
    async with ctx.agent() as agent:
        orgs = [o async for o in agent.iter_organizations()]

    def render() -> RenderableType:
        return make_table(
            f"Organizations: {len(orgs)}",
            ("ID", "Name", "PR creation", "Rules detection"),
            (
                (
                    o.id,
                    o.name,
                    "on" if o.settings.enable_pr_creation else "off",
                    "on" if o.settings.enable_rules_detection else "off",
                )
                for o in orgs
            ),
        )

    ctx.output.result(to_json(orgs), render)
    return ExitCode.OK


# --- emulator and demo -----------------------------------------------------------------
async def cmd_demo(ctx: Context) -> int:
    from ._demo import run_demo

    return await run_demo(
        ctx.output,
        time_scale=ctx.args.time_scale,
        seed=ctx.args.seed,
        rate_limit_scale=ctx.args.rate_limit_scale,  # the global option; None: time_scale
    )


def serve_emulator(argv: Sequence[str]) -> int:
    """``codegen-api emulator ...``: ``python -m codegen_async.emulator`` under this name.

    The options and the server are the emulator's own (``add_arguments`` and ``serve``);
    the first line on standard output is ``{"base_url", "token", "org_id"}``.
    """
    from ..emulator import add_arguments, serve

    parser = argparse.ArgumentParser(
        prog="codegen-api emulator",
        description="Serve an emulation of the Codegen API on loopback, for tests and demos. "
        'The first line on stdout is {"base_url": ..., "token": ..., "org_id": ...}; '
        "stop it with Ctrl+C or SIGTERM.",
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    try:
        return serve(args)
    except (ValueError, OSError) as exc:
        Output(json_mode=False).error_line(f"cannot start the emulator: {exc}")
        return ExitCode.USAGE


COMMANDS: dict[str, Command] = {
    "me": cmd_me,
    "users": cmd_users,
    "user": cmd_user,
    "runs": cmd_runs,
    "run": cmd_run,
    "wait": cmd_wait,
    "logs": cmd_logs,
    "analyze-logs": cmd_analyze_logs,
    "setup-commands": cmd_setup_commands,
    "slack-token": cmd_slack_token,
    "repos": cmd_repos,
    "orgs": cmd_orgs,
    "demo": cmd_demo,
}
