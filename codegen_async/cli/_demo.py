"""``codegen-api demo``: the documentation's complete sandbox workflow, on an embedded emulator.

The demo starts the emulator in this process (no credentials, no network), with every
duration it keeps (run lengths, rate-limit windows) multiplied by ``time_scale``, and drives
it with an ``AsyncAgent`` that keeps the documented quotas scaled the same way, or by the
global ``--rate-limit-scale`` when given (a client that keeps looser quotas than the server
then meets its 429s, waits them out and retries; a stricter one holds calls back longer;
``CODEGEN_RATE_LIMIT_SCALE`` is not read: the demo knows its emulator's scale). It then runs
the workflow of "Complete Workflow Example" in ``advanced-api-endpoints.md``:

1. the current user;
2. setup commands for a repository (generate, then wait);
3. a test run of those commands in the repository's sandbox, which the demo makes fail
   (through the emulator's control API) so that the workflow reaches the next step;
4. an analysis of the sandbox's logs (the sandbox id comes from the run's metadata);
5. a fix run that uses the analysis;

and, to show the client-side rate limiter at work, the documentation's multi-environment
setup pattern fanned out at once (six ``generate_setup_commands`` calls against a quota of
five a minute, where the documentation sleeps 12 s between calls). It prints each step, the
agent run ids and results, and how long the limiter held calls back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import attrs

from .._client import AsyncAgent
from .._ratelimit import RateLimits
from ..models import AgentRun, Repository, User
from ._errors import ExitCode
from ._output import Output, plain, status_text, styled, to_json
from ._progress import run_board

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from ..emulator import Emulator

__all__ = ["DemoReport", "run_demo"]

SETUP_PROMPT = "Generate comprehensive setup commands"
ENVIRONMENTS = ("development", "staging", "production")


@attrs.define
class StepRecord:
    """One agent run the workflow started and waited for."""

    step: str
    agent_run_id: int
    status: str
    seconds: float
    result: str | None


@attrs.define
class DemoReport:
    """What the demo did, for the summary and for ``--json``."""

    base_url: str
    org_id: int
    time_scale: float
    rate_limit_scale: float
    user: User | None = None
    repository: Repository | None = None
    sandbox_id: int | None = None
    steps: list[StepRecord] = attrs.field(factory=list)
    success: bool = False
    fanout_seconds: float = 0.0
    fanout_held_seconds: float = 0.0
    client_stats: dict[str, Any] = attrs.field(factory=dict)
    emulator_stats: dict[str, Any] = attrs.field(factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "emulator": {
                "base_url": self.base_url,
                "org_id": self.org_id,
                "time_scale": self.time_scale,
            },
            "user": to_json(self.user),
            "repository": to_json(self.repository),
            "sandbox_id": self.sandbox_id,
            "steps": [attrs.asdict(step) for step in self.steps],
            "fanout": {
                "calls": len(ENVIRONMENTS) * 2,
                "seconds": round(self.fanout_seconds, 3),
                "rate_limit_wait_seconds": round(self.fanout_held_seconds, 3),
            },
            "client": {"rate_limit_scale": self.rate_limit_scale, **self.client_stats},
            "emulator_stats": self.emulator_stats,
            "seconds": round(self.seconds, 3),
        }


class _Workflow:
    """The demo's steps over one client and one emulator."""

    def __init__(
        self, agent: AsyncAgent, emulator: Emulator, output: Output, report: DemoReport
    ) -> None:
        self.agent = agent
        self.emulator = emulator
        self.output = output
        self.report = report

    # --- printing ---------------------------------------------------------------------
    def say(self, renderable: RenderableType) -> None:
        if not self.output.json_mode:
            self.output.out.print(renderable)

    def line(self, *parts: str | tuple[str, str] | Text) -> None:
        """One indented line (wrapped lines stay indented) under the current step; the
        parts as :func:`styled` takes them (text from the API is never markup)."""
        if not self.output.json_mode:
            from rich.padding import Padding

            self.output.out.print(Padding(styled(*parts), (0, 0, 0, 3)))

    def heading(self, number: int, title: str) -> None:
        self.say(styled("\n", (f"{number}.", "bold cyan"), " ", (title, "bold")))

    @contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        ctx = self.output.out.status(text) if self.output.interactive else nullcontext()
        with ctx:
            yield

    def took(self, seconds: float) -> str:
        emulated = seconds / self.report.time_scale
        return f"{seconds:.1f}s (≈ {emulated:.0f}s of API time)"

    # --- steps -------------------------------------------------------------------------
    async def wait(self, step: str, run_id: int, started: float) -> AgentRun:
        with self.spinner(f"waiting for agent run {run_id}…"):
            run = await self.agent.wait_for_run(run_id)
        seconds = time.monotonic() - started
        self.report.steps.append(
            StepRecord(step, run.id, str(run.status), round(seconds, 3), run.result)
        )
        self.line(
            "agent run ",
            (str(run.id), "bold"),
            " ",
            status_text(run.status),
            f" in {self.took(seconds)}",
        )
        return run

    def panel(self, text: str | None, title: str, syntax: str | None = None) -> None:
        if self.output.json_mode:
            return
        from rich.padding import Padding
        from rich.panel import Panel
        from rich.syntax import Syntax

        from ._output import literal

        body: RenderableType = (
            Syntax(literal(text or ""), syntax, word_wrap=True) if syntax else plain(text)
        )
        self.say(Padding(Panel(body, title=title, title_align="left"), (0, 0, 0, 3)))

    async def run(self) -> None:
        agent, report = self.agent, self.report

        self.heading(1, "Current user")
        user = report.user = await agent.get_current_user()
        self.line(
            ("✓", "green"),
            " Authenticated as: ",
            (user.full_name or "", "bold"),
            f" (@{user.github_username}), {user.role} of organization {report.org_id}",
        )

        repo = report.repository = await self.pick_repository()
        self.heading(2, f"Setup commands for {repo.full_name} (repository {repo.id})")
        started = time.monotonic()
        setup_response = await agent.generate_setup_commands(repo_id=repo.id, prompt=SETUP_PROMPT)
        self.line(
            "started agent run ",
            (str(setup_response.agent_run_id), "bold"),
            f": {setup_response.url}",
        )
        setup = await self.wait("setup commands", setup_response.agent_run_id, started)
        if setup.status != "completed":
            self.line(("✗", "red"), f" Setup generation failed: {setup.result}")
            return
        self.panel(setup.result, ".codegen/setup.sh", syntax="bash")

        self.heading(3, "Test run: execute the setup commands in a sandbox")
        started = time.monotonic()
        test_run = await agent.run(
            prompt=(
                "Execute the generated setup commands and verify:\n"
                "1. All dependencies install successfully\n"
                "2. Development environment works\n"
                "3. Tests pass\n\n"
                f"Setup commands:\n{setup.result}"
            ),
            repo_id=repo.id,
        )
        self.line("started agent run ", (str(test_run.id), "bold"), f": {test_run.web_url}")
        # The emulated sandbox's setup really is broken (sandbox logs with an npm error);
        # end the run as failed now, so that every demo reaches the analysis.
        await asyncio.sleep(3.0 * report.time_scale)
        self.emulator.finish_run(test_run.id, "failed")
        tested = await self.wait("test run", test_run.id, started)
        self.line(("✗", "red"), f" {tested.result}")
        if tested.status == "completed":
            report.success = True
            return

        sandbox_id = (tested.metadata or {}).get("sandbox_id")
        report.sandbox_id = sandbox_id
        if not isinstance(sandbox_id, int):
            self.line(("✗", "red"), " the test run carries no sandbox_id in its metadata")
            return
        self.line("sandbox_id from the run's metadata: ", (str(sandbox_id), "bold"))

        self.heading(4, f"Log analysis of sandbox {sandbox_id}")
        started = time.monotonic()
        analysis = await agent.analyze_sandbox_logs(sandbox_id=sandbox_id)
        self.line(
            "started agent run ", (str(analysis.agent_run_id), "bold"), f": {analysis.message}"
        )
        analysed = await self.wait("log analysis", analysis.agent_run_id, started)
        if analysed.status != "completed":
            self.line(("✗", "red"), f" Analysis failed: {analysed.result}")
            return
        self.panel(analysed.result, "Log analysis")

        self.heading(5, "Fix run: repair the setup from the analysis")
        started = time.monotonic()
        fix_run = await agent.run(
            prompt=(
                "Fix the sandbox setup issues identified:\n\n"
                f"Analysis:\n{analysed.result}\n\n"
                f"Original Setup:\n{setup.result}\n\n"
                "Actions:\n1. Identify root causes\n2. Update setup commands\n"
                "3. Re-run setup\n4. Verify fixes"
            ),
            repo_id=repo.id,
            metadata={"sandbox_id": sandbox_id, "analysis_run_id": analysis.agent_run_id},
        )
        self.line("started agent run ", (str(fix_run.id), "bold"), f": {fix_run.web_url}")
        fixed = await self.wait("fix run", fix_run.id, started)
        if fixed.status == "completed":
            self.line(("✓", "green"), " Issues fixed successfully")
            self.panel(fixed.result, "Fix")
            report.success = True
        else:
            self.line(("✗", "red"), f" Fix failed: {fixed.result}")

    async def pick_repository(self) -> Repository:
        """The first repository with a sandbox whose setup failed (else the first one)."""
        repos = [r async for r in self.agent.iter_repositories()]
        live = [r for r in repos if not r.archived]
        failed = [r for r in live if r.setup_status == "FAILED"]
        chosen = (failed or live or repos)[0]
        return chosen

    async def fanout(self) -> None:
        """The docs' multi-environment setup, all at once: the limiter keeps the quota."""
        agent, report = self.agent, self.report
        repos = [r async for r in agent.iter_repositories() if not r.archived][:2]
        calls = [(repo, env) for repo in repos for env in ENVIRONMENTS]
        self.heading(
            6,
            f"Fan-out: setup commands for {len(ENVIRONMENTS)} environments × {len(repos)} "
            f"repositories, {len(calls)} calls at once",
        )
        quota = agent.rate_limits.quotas.get("generate_setup_commands")
        self.line(
            f"The documentation sleeps 12 s between these calls; here all start together "
            f"and the client's limiter admits {quota.limit if quota else '?'} per "
            f"{quota.window if quota else 0:.1f}s (5 per minute, time-scaled), "
            "holding the rest back instead of drawing 429s."
        )
        held_before = agent.stats.rate_limit_wait_seconds
        limited_before = agent.stats.rate_limited
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                agent.generate_setup_commands(
                    repo_id=repo.id,
                    prompt=(
                        f"Generate setup commands for {env} environment. Format output as "
                        "shell script with comments."
                    ),
                )
                for repo, env in calls
            )
        )
        report.fanout_held_seconds = agent.stats.rate_limit_wait_seconds - held_before
        ids = [response.agent_run_id for response in responses]
        with run_board(
            self.output, ids, title="Multi-environment setup commands", plain=False
        ) as board:
            runs = await agent.wait_for_runs(ids, on_update=board.update)
        report.fanout_seconds = time.monotonic() - started
        for (repo, env), run_id in zip(calls, ids, strict=True):
            run = runs[run_id]
            report.steps.append(
                StepRecord(
                    f"fan-out: {env}, {repo.name}",
                    run_id,
                    str(run.status),
                    round(report.fanout_seconds, 3),
                    run.result,
                )
            )
        if not self.output.json_mode:
            from rich.padding import Padding

            from ._output import make_table

            table = make_table(
                None,
                ("Agent run", "Repository", "Environment", "Status", "Script"),
                (
                    (
                        run_id,
                        repo.name,
                        env,
                        status_text(runs[run_id].status),
                        f"{len((runs[run_id].result or '').splitlines())} lines",
                    )
                    for (repo, env), run_id in zip(calls, ids, strict=True)
                ),
            )
            self.say(Padding(table, (0, 0, 0, 3)))
        answered_429 = agent.stats.rate_limited - limited_before
        self.line(
            f"{len(calls)} setup scripts in {self.took(report.fanout_seconds)}; the limiter "
            "held calls back ",
            (f"{report.fanout_held_seconds:.2f}s", "bold"),
            f", and the server answered {answered_429 or 'no'} "
            f"429{'s' if answered_429 != 1 else ''}.",
        )


def _summary(report: DemoReport) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel

    from ._output import kv_table, make_table

    runs = make_table(
        "Agent runs",
        ("Step", "Agent run", "Status", "Took"),
        (
            (s.step, s.agent_run_id, status_text(s.status), f"{s.seconds:.2f}s")
            for s in report.steps
        ),
    )
    client = report.client_stats
    served = report.emulator_stats
    limiting = kv_table(
        {
            "Client requests": f"{client.get('requests', 0)} "
            f"({client.get('retries', 0)} retries, {client.get('rate_limited', 0)} answered 429)",
            "Held back by the rate limiter": f"{client.get('rate_limit_wait_seconds', 0.0):.2f}s "
            f"in all, {report.fanout_held_seconds:.2f}s of it in the fan-out",
            "Emulator": f"served {_total(served.get('requests'))} requests, "
            f"sent {served.get('rate_limited', 0)} × 429, "
            f"{served.get('runs_created', '?')} agent runs created",
            "Outcome": plain("workflow succeeded", "green")
            if report.success
            else plain("failed", "red"),
            "Took": f"{report.seconds:.1f}s (time scale {report.time_scale:g}"
            + (
                ""
                if report.rate_limit_scale == report.time_scale
                else f", client quota scale {report.rate_limit_scale:g}"
            )
            + ")",
        },
    )
    return Group(
        "",
        runs,
        Panel(limiting, title="Rate limiting and totals", title_align="left"),
    )


def _total(value: Any) -> Any:
    if isinstance(value, dict):
        return sum(v for v in value.values() if isinstance(v, int))
    return value if value is not None else "?"


async def run_demo(
    output: Output,
    *,
    time_scale: float = 0.05,
    seed: int = 0,
    rate_limit_scale: float | None = None,
) -> int:
    """Run the demo; return 0 when the workflow ends with a completed fix run.

    ``rate_limit_scale`` scales the client's quota windows and poll pace (default:
    ``time_scale``, the emulator's own).
    """
    client_scale = time_scale if rate_limit_scale is None else rate_limit_scale
    from ..emulator import Emulator

    began = time.monotonic()
    async with Emulator(
        time_scale=time_scale,
        seed=seed,
        status_style="api",
        run_duration=(5.0, 30.0),
        failure_rate=0.0,
    ) as emu:
        report = DemoReport(
            base_url=emu.base_url,
            org_id=emu.org_id,
            time_scale=time_scale,
            rate_limit_scale=client_scale,
        )
        if not output.json_mode:
            from rich.panel import Panel

            output.out.print(
                Panel(
                    "The documentation's complete sandbox workflow, run by codegen-async "
                    "against an embedded emulator of the Codegen API (no credentials, no "
                    f"network).\nEmulator {emu.base_url} · organization {emu.org_id} · "
                    f"every duration × {time_scale:g}"
                    + (
                        ""
                        if client_scale == time_scale
                        else f" · the client's quota windows × {client_scale:g}"
                    ),
                    title="codegen-api demo",
                    title_align="left",
                )
            )
        limits = RateLimits.documented(scale=client_scale)
        async with AsyncAgent(
            emu.token, emu.org_id, base_url=emu.base_url, rate_limits=limits
        ) as agent:
            workflow = _Workflow(agent, emu, output, report)
            await workflow.run()
            if report.success:
                await workflow.fanout()
            stats = agent.stats
            report.client_stats = {
                "requests": stats.requests,
                "retries": stats.retries,
                "rate_limited": stats.rate_limited,
                "rate_limit_wait_seconds": round(stats.rate_limit_wait_seconds, 3),
            }
        report.emulator_stats = emu.stats()
    report.seconds = time.monotonic() - began
    output.result(report.to_json(), lambda: _summary(report))
    return ExitCode.OK if report.success else ExitCode.RUN_NOT_COMPLETED
