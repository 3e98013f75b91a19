"""The overhead benchmarks can measure another checkout of the SDK beside this one.

``CODEGEN_BENCH_BASELINE`` / ``--baseline`` add rows for the SDK's clients imported from
another checkout (say 0.1.0 in a worktree), measured in the same repetitions; the
instructions scenario counts the same calls with valgrind. Nothing here times anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import NotAvailable, bench_instructions, bench_overhead
from benchmarks._servers import serve_get_run

REPO_ROOT = Path(__file__).resolve().parent.parent


def _checkout_copy(where: Path) -> Path:
    tree = where / "other-checkout"
    for package in ("codegen_async", "codegen_sync"):
        shutil.copytree(
            REPO_ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tree


@pytest.mark.timeout(300)
def test_child_imports_the_sdk_from_the_given_checkout(tmp_path: Path) -> None:
    tree = _checkout_copy(tmp_path)
    with serve_get_run() as server:
        for sdk_path, expected in ((None, REPO_ROOT), (tree, tree)):
            cmd, env = bench_overhead.child_command(
                "AsyncAgent",
                server,
                4,
                2,
                modes=(1,),
                sdk_path=None if sdk_path is None else str(sdk_path),
            )
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr[-2000:]
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            assert Path(result["sdk"]).resolve().is_relative_to(expected.resolve())
            assert list(result["modes"]) == ["1"]  # --modes limits what is measured


def test_a_baseline_that_is_not_a_checkout_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="not a checkout of codegen-async"):
        bench_overhead.run(quick=True, baseline=str(tmp_path))


def test_baseline_notes_pair_each_repetition() -> None:
    def sample(seconds: float, cpu: float) -> dict[str, float]:
        return {"seconds": seconds, "cpu": cpu}

    samples = {
        ("AsyncAgent", "1"): {0: sample(1.0, 0.30), 1: sample(2.0, 0.60), 2: sample(1.0, 0.33)},
        ("AsyncAgent @ baseline", "1"): {
            0: sample(1.0, 0.20),
            1: sample(1.0, 0.60),
            2: sample(2.0, 0.30),
        },
    }
    notes = bench_overhead._baseline_notes(samples, "/old", 3000)
    assert notes[0] == "Baseline: /old."
    # CPU ratios 1.5, 1.0, 1.1 -> median 1.1; speed ratios 1.0, 0.5, 2.0 -> median 1.0.
    assert notes[1] == (
        "AsyncAgent at 1 in flight against the baseline: CPU per call 1.100x, req/s 1.000x "
        "(median of 3 paired repetitions)."
    )
    assert len(notes) == 2  # the blocking client was not measured: no line for it
    assert bench_overhead._baseline_notes(samples, None, 3000) == []


def test_measured_clients_add_the_baseline_rows_only_when_asked() -> None:
    plain = bench_overhead._measured(None)
    assert [name for name, _, _ in plain] == [client for client, _ in bench_overhead.CLIENTS]
    with_baseline = bench_overhead._measured("/old")
    assert with_baseline[len(plain) :] == [
        ("AsyncAgent @ baseline", "AsyncAgent", "/old"),
        ("codegen_sync.Agent @ baseline", "codegen_sync.Agent", "/old"),
    ]


def test_instructions_scenario_is_not_available_without_valgrind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(NotAvailable, match="valgrind"):
        bench_instructions.run(quick=True)
