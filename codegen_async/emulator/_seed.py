"""The emulator's default world, built the same way for the same seed.

- ``org_id`` ("Acme Robotics"): the token's user is an ``ADMIN``; 30 users of all three
  roles (some without email or full name); six repositories; sandboxes 1 (setup logs with an
  npm error), 2 (no logs), 3 and 4 (other errors); pull requests; a history of agent runs
  from every kind of source; integrations, check-suite settings, CLI rules, OAuth tokens.
- ``org_id + 1`` ("Acme Labs"): the user is a ``MEMBER``; it has no repositories, so
  starting a run there is 404 ``NoReposFoundInOrgErrorResponse``.
- ``org_id + 2`` ("Globex Corporation"): the user is not a member (403 everywhere); its own
  users, a repository and sandbox 9; ``EmulatorState.foreign_token`` belongs to one of them.

Names and roles are shuffled by the seed; ids are fixed so that tests can name them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Final

from ..models import CheckSuiteSettings, IntegrationStatus, OAuthProvider, OrganizationSettings
from . import _content
from ._records import OrgRecord, RepoRecord, RunRecord, SandboxRecord, UserRecord
from ._state import EmulatorState

__all__ = ["FIRST_USER_ID", "REPO_IDS", "seed_state"]

FIRST_USER_ID: Final = 1001
FOREIGN_FIRST_USER_ID: Final = 2001
REPO_IDS: Final = (456, 457, 458, 459, 460, 461)
FOREIGN_REPO_ID: Final = 900
# History is dated before this instant (2025-01-14 09:00 UTC), so it never changes.
HISTORY_EPOCH: Final = datetime(2025, 1, 14, 9, 0, tzinfo=timezone.utc).timestamp()

_FIRST: Final = (
    "Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan",
    "Radia", "Guido", "Katherine", "Bjarne", "Hedy", "Tim", "Joan", "Edsger", "Sophie",
    "Donald", "Anita", "Niklaus", "Adele", "John", "Shafi", "Leslie", "Lynn", "Yukihiro",
    "Karen", "Rob", "Evelyn", "Vint", "Mary", "Brian", "Jean",
)  # fmt: skip
_LAST: Final = (
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
    "Turing", "Perlman", "van Rossum", "Johnson", "Stroustrup", "Lamarr", "Berners-Lee",
    "Clarke", "Dijkstra", "Wilson", "Knuth", "Borg", "Wirth", "Goldberg", "McCarthy",
    "Goldwasser", "Lamport", "Conway", "Matsumoto", "Jones", "Pike", "Boyd", "Cerf",
    "Keller", "Kernighan", "Sammet",
)  # fmt: skip

_INTEGRATIONS: Final = (
    ("github", True, None, 41_022_713, {"account": "acme-robotics", "repositories": 6}),
    ("slack", True, 88, None, {"team": "Acme Robotics", "channel": "#codegen"}),
    ("linear", True, 91, None, {"workspace": "acme"}),
    ("sentry", True, 97, None, {"organization": "acme-robotics"}),
    ("jira", False, None, None, None),
    ("notion", False, None, None, None),
    ("clickup", False, None, None, None),
    ("monday", False, None, None, None),
    ("figma", False, None, None, None),
    ("circleci", True, 102, None, {"kind": "api_key", "project": "gh/acme-robotics"}),
    ("postgresql", False, None, None, {"kind": "database", "host": None}),
)

_PROVIDERS: Final = (
    ("linear", "https://linear.app", ["read", "write", "issues:create"]),
    ("notion", "https://api.notion.com", None),
    ("sentry", "https://sentry.io", ["project:read", "event:read"]),
    ("github", "https://github.com", ["repo", "read:org"]),
    ("figma", "https://www.figma.com", ["file_read"]),
    ("atlassian", "https://auth.atlassian.com", ["read:jira-work", "write:jira-work"]),
)

_HISTORY: Final = (
    # (hours before the epoch, source, user offset, kind, status, repo index, prompt)
    (240, "SLACK", 3, "run", "completed", 0, "Add dark mode to the settings page"),
    (200, "GITHUB", 5, "run", "completed", 1, "Fix the N+1 query in /robots/{id}/missions"),
    (170, "LINEAR", 0, "run", "failed", 0, "ENG-412: upgrade to React 18"),
    (150, "API", 0, "setup", "completed", 0, "Generate setup commands"),
    (120, "GITHUB_CHECK_SUITE", 7, "run", "completed", 1, "Fix failing check ci/test"),
    (96, "CHAT", 2, "run", "cancelled", 4, "Rewrite the route planner in Rust"),
    (72, "LOCAL", 0, "run", "completed", 4, "Add a benchmark for the A* planner"),
    (60, "GITHUB_PR_REVIEW", 9, "run", "completed", 0, "Address review comments on #41"),
    (48, "JIRA", 4, "run", "failed", 1, "OPS-77: rotate the database credentials"),
    (30, "API", 0, "analysis", "completed", 0, "Analyze the setup logs of sandbox 1"),
    (20, "CLICKUP", 6, "run", "completed", 3, "Document the fleet API endpoints"),
    (12, "MONDAY", 8, "run", "completed", 2, "Bump the firmware toolchain to GCC 13"),
    (6, "SLACK", 1, "run", "paused", 1, "Should the cache be per tenant or global?"),
    (2, "SETUP_COMMANDS", 0, "setup", "completed", 1, "Setup commands for fleet-api"),
)


def _users(
    state: EmulatorState, first_id: int, count: int, domain: str, name_offset: int
) -> list[int]:
    rng = state.rng
    firsts = list(_FIRST)
    lasts = list(_LAST)
    rng.shuffle(firsts)
    rng.shuffle(lasts)
    ids = []
    for i in range(count):
        uid = first_id + i
        first = firsts[(i + name_offset) % len(firsts)]
        last = lasts[(i * 7 + name_offset) % len(lasts)]
        username = f"{first}{last.replace(' ', '').replace('-', '')}".lower()[:20] + f"{i}"
        github_id = str(10_000_000 + uid * 97)
        # A few users have an incomplete profile, as the docs' "missing_profiles" expects.
        email = None if i % 11 == 4 else f"{first.lower()}.{last.split()[-1].lower()}@{domain}"
        full_name = None if i % 9 == 5 else f"{first} {last}"
        avatar = None if i % 13 == 6 else f"https://avatars.githubusercontent.com/u/{github_id}"
        state.users[uid] = UserRecord(
            id=uid,
            github_user_id=github_id,
            github_username=username,
            email=email,
            avatar_url=avatar,
            full_name=full_name,
        )
        ids.append(uid)
    return ids


def _roles(state: EmulatorState, user_ids: list[int], admins: int, managers: int) -> dict[int, str]:
    """The first user is an ADMIN; the rest get a shuffled mix of all three roles."""
    rest = ["ADMIN"] * (admins - 1) + ["MANAGER"] * managers
    rest += ["MEMBER"] * (len(user_ids) - 1 - len(rest))
    state.rng.shuffle(rest)
    return {user_ids[0]: "ADMIN", **dict(zip(user_ids[1:], rest, strict=True))}


def _repo(
    state: EmulatorState,
    repo_id: int,
    org_id: int,
    owner: str,
    name: str,
    description: str | None,
    language: str | None,
    *,
    visibility: str | None = "private",
    archived: bool | None = False,
    setup_status: str = "COMPLETED",
) -> RepoRecord:
    repo = RepoRecord(
        id=repo_id,
        org_id=org_id,
        name=name,
        full_name=f"{owner}/{name}",
        description=description,
        github_id=str(700_000_000 + repo_id * 1_013),
        visibility=visibility,
        archived=archived,
        setup_status=setup_status,
        language=language,
    )
    state.repos[repo_id] = repo
    state.check_suites[repo_id] = CheckSuiteSettings(
        check_retry_count=3,
        ignored_checks=["codecov/patch"],
        check_retry_counts={"ci/test": 2},
        custom_prompts={"ci/lint": "Fix lint errors only; do not change behaviour."},
        high_priority_apps=["github-actions"],
        available_check_suite_names=[
            "ci/build",
            "ci/test",
            "ci/lint",
            "codecov/patch",
            "security/snyk",
        ],
    )
    return repo


def _sandbox(
    state: EmulatorState, sandbox_id: int, repo: RepoRecord, toolchain: str | None
) -> None:
    failure = _content.FAILURES[toolchain] if toolchain else None
    logs = (
        _content.sandbox_logs(repo.full_name, toolchain, "2025-01-14 08:41:07")
        if toolchain
        else None
    )
    state.sandboxes[sandbox_id] = SandboxRecord(
        id=sandbox_id, org_id=repo.org_id, repo_id=repo.id, logs=logs, failure=failure
    )
    repo.sandbox_id = sandbox_id


def seed_state(state: EmulatorState, *, org_id: int, token: str | None) -> str:
    """Fill ``state`` with the default world; return the primary user's API token."""
    lab_id, foreign_id = org_id + 1, org_id + 2
    state.primary_org_id, state.secondary_org_id, state.foreign_org_id = org_id, lab_id, foreign_id

    acme_users = _users(state, FIRST_USER_ID, 30, "acme-robotics.com", 0)
    globex_users = _users(state, FOREIGN_FIRST_USER_ID, 6, "globex.example", 11)
    primary = acme_users[0]
    state.primary_user_id = primary
    me = state.users[primary]
    # The token's user has a complete profile (the docs print it).
    me.full_name = me.full_name or "Ada Lovelace"
    me.email = me.email or "admin@acme-robotics.com"
    me.avatar_url = me.avatar_url or f"https://avatars.githubusercontent.com/u/{me.github_user_id}"
    me.custom_prompt = (
        "Prefer small pull requests with tests; explain trade-offs in the description."
    )

    integrations = [
        IntegrationStatus(
            integration_type=kind,
            active=active,
            token_id=token_id,
            installation_id=installation,
            metadata=meta,
        )
        for kind, active, token_id, installation, meta in _INTEGRATIONS
    ]
    state.orgs[org_id] = OrgRecord(
        id=org_id,
        name="Acme Robotics",
        settings=OrganizationSettings(enable_pr_creation=True, enable_rules_detection=True),
        members=_roles(state, acme_users, admins=3, managers=7),
        rules=(
            "Use TypeScript strict mode in web code and type hints in Python.\n"
            "Every pull request needs tests; never commit secrets."
        ),
        integrations=integrations,
    )
    lab_members = {primary: "MEMBER", acme_users[1]: "ADMIN", acme_users[2]: "MANAGER"}
    state.orgs[lab_id] = OrgRecord(
        id=lab_id,
        name="Acme Labs",
        settings=OrganizationSettings(enable_pr_creation=False, enable_rules_detection=True),
        members=lab_members,
        rules=None,
        integrations=[integrations[0]],
    )
    state.orgs[foreign_id] = OrgRecord(
        id=foreign_id,
        name="Globex Corporation",
        settings=OrganizationSettings(),
        members=_roles(state, globex_users, admins=1, managers=2),
        rules="Globex internal rules.",
        integrations=[integrations[0]],
    )

    owner = "acme-robotics"
    repos = [
        _repo(state, 456, org_id, owner, "web-dashboard", "Fleet dashboard (Next.js)",
              "TypeScript", setup_status="FAILED"),
        _repo(state, 457, org_id, owner, "fleet-api", "REST API for the robot fleet", "Python",
              setup_status="FAILED"),
        _repo(state, 458, org_id, owner, "firmware", "Motor controller firmware", "C++",
              setup_status="NOT_STARTED"),
        _repo(state, 459, org_id, owner, "docs", None, None, visibility="public"),
        _repo(state, 460, org_id, owner, "routing-engine", "Path planning service", "Go",
              setup_status="FAILED"),
        _repo(state, 461, org_id, owner, "legacy-monolith", None, None, archived=True,
              setup_status="NOT_STARTED"),
    ]  # fmt: skip
    foreign_repo = _repo(
        state, FOREIGN_REPO_ID, foreign_id, "globex", "hyperion", "Globex core", "Rust"
    )
    _sandbox(state, 1, repos[0], "npm")
    _sandbox(state, 2, repos[2], None)
    _sandbox(state, 3, repos[1], "python")
    _sandbox(state, 4, repos[4], "postgres")
    _sandbox(state, 9, foreign_repo, "rust")

    day = 86_400.0
    for age, title, state_, repo in (
        (9, "Fix flaky login test", "open", repos[0]),
        (8, "WIP: migrate charts to visx", "draft", repos[0]),
        (30, "Remove the jQuery dependency", "closed", repos[0]),
        (5, "Add /missions pagination", "open", repos[1]),
    ):
        state.add_pull_request(
            repo,
            title=title,
            state=state_,
            branch=title.lower().replace(" ", "-").replace(":", "")[:40],
            created_at=HISTORY_EPOCH - age * day,
        )

    state.mcp_providers = [
        OAuthProvider(
            id=index,
            name=name,
            issuer=issuer,
            authorization_endpoint=f"{issuer}/oauth/authorize",
            token_endpoint=f"{issuer}/oauth/token",
            default_scopes=scopes,
            is_mcp=name != "github",
            meta={"docs": f"https://docs.codegen.com/integrations/{name}"},
        )
        for index, (name, issuer, scopes) in enumerate(_PROVIDERS, start=1)
    ]
    state.oauth_tokens[(primary, org_id)] = {
        "linear": {"scopes": ["read", "write"], "created_at": "2025-01-02T10:00:00+00:00"},
        "sentry": {"scopes": ["project:read"], "created_at": "2025-01-09T16:30:00+00:00"},
    }

    _history(state, org_id, acme_users, repos)

    main_token = state.add_token(primary, token)
    state.foreign_token = state.add_token(globex_users[0])
    return main_token


def _history(state: EmulatorState, org_id: int, users: list[int], repos: list[RepoRecord]) -> None:
    """Past agent runs, already finished (one paused), so lists and filters have data."""
    kinds = {"run": "run", "analysis": "analyze_sandbox_logs", "setup": "generate_setup_commands"}
    for hours, source, user_offset, kind, status, repo_index, prompt in _HISTORY:
        created = HISTORY_EPOCH - hours * 3600.0
        repo = repos[repo_index]
        duration = 60.0 + (hours % 7) * 45.0
        sandbox = state.sandbox_for_repo(repo)
        run = RunRecord(
            id=state.next_run_id,
            org_id=org_id,
            user_id=users[user_offset],
            kind=kind,  # type: ignore[arg-type]
            operation=kinds[kind],
            source_type=source,
            prompt=prompt,
            created_at=created,
            duration=duration,
            planned=status if status in ("completed", "failed") else "completed",
            repo_id=repo.id,
            sandbox_id=1 if kind == "analysis" else sandbox,
            metadata={"sandbox_id": sandbox} if kind == "run" and sandbox else None,
        )
        state.next_run_id += 1
        if status in ("cancelled", "paused"):
            run.force(status, created + duration)
        if kind == "run":
            pr = state.add_pull_request(
                repo,
                title=_content.pr_title(prompt),
                state="open",
                branch=f"codegen-bot/run-{run.id}",
                created_at=run.deadline,
                run_id=run.id,
            )
            run.pr_id = pr.id
        state.runs[run.id] = run
        state.org_runs.setdefault(org_id, []).append(run)
