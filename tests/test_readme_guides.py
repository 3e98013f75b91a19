"""The README's guides hold: the extras its snippets need are in its Install section, the
emulator's control routes it lists exist, and its curl example really makes a 429."""

from __future__ import annotations

import importlib.metadata
import re
import urllib.request
from pathlib import Path

import pytest

from codegen_async.cli import ExitCode, main
from codegen_async.emulator import Emulator, EmulatorThread

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def test_install_names_every_extra_a_user_needs() -> None:
    extras = importlib.metadata.metadata("codegen-async").get_all("Provides-Extra") or []
    assert "progress" in extras
    install = _section("Install")
    for extra in set(extras) - {"test", "bench", "lint"}:  # the developers' extras
        assert f'"codegen-async[{extra}]"' in install, extra
    # The snippet that needs tqdm says so where it is used.
    uses = [line for line in README.splitlines() if re.search(r"\w\(.*progress=True", line)]
    assert uses and all(re.search(r"`?progress`? extra", line) for line in uses), uses


def test_readme_control_routes_exist() -> None:
    routes = set(re.findall(r"`(GET|POST|DELETE) (/_emulator/[^` \[]+)", README))
    assert len(routes) >= 10
    app = Emulator().app
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    missing = {(m, p) for m, p in routes if (m, p.replace("{id}", "{agent_run_id}")) not in served}
    assert not missing


def test_readme_curl_makes_a_429(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = re.search(r"-d '(\{.*?\})' *\n", README)
    assert body is not None
    with EmulatorThread(time_scale=0.01) as emu:
        request = urllib.request.Request(
            f"{emu.base_url}/_emulator/faults", data=body.group(1).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        for name, value in emu.client_env().items():
            monkeypatch.setenv(name, value)
        assert main(["--max-retries", "0", "me"]) == ExitCode.RATE_LIMITED
    assert "retry in 30.0s" in capsys.readouterr().err
