"""Print pip constraints that pin each direct dependency to the lower bound pyproject.toml declares.

Used by ``.ci/run`` for the lowest-versions run: ``pip install -c <(this) ...`` then installs the
oldest releases the project claims to work with, so a bound that is too low fails in CI
instead of on a user's machine. Read from ``pyproject.toml`` every time (never a copy kept by
hand): ``[project].dependencies`` and every extra of ``[project.optional-dependencies]``.

A requirement ``name>=X`` (or ``~=X``) becomes ``name==X``; ``name==X.*`` stays as it is. A
dependency with no lower bound is an error (it could resolve to anything). References to the
project itself (``codegen-async[redis]`` in an extra) are skipped.

``lower_bounds.py --requirements EXTRA`` prints one extra's requirements less those
references: the lowest-versions run installs the test tools without the benchmark peers,
which are no floor of ours. Standard library only (``tomllib``: Python 3.11+, the
interpreter ``.ci/run`` itself runs on).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")
CLAUSE = re.compile(r"^\s*(>=|~=|==|<=|<|>|!=)\s*(\S+)\s*$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _load(path: Path) -> dict[str, object]:
    with path.open("rb") as file:
        return tomllib.load(file)


def requirements(pyproject: dict[str, object]) -> list[str]:
    """Every direct requirement: the core dependencies, then each extra's."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    found = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        found.extend(extra)
    return found


def pin(requirement: str, own_name: str) -> str | None:
    """``name>=X`` -> ``name==X``; None for a reference to the project itself."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read requirement {requirement!r}")
    name, _extras, spec, _marker = match.groups()
    if _normalize(name) == own_name:
        return None
    for clause in spec.split(","):
        bound = CLAUSE.match(clause)
        # >=X and ~=X: X is the lowest allowed; ==X and ==X.* allow nothing lower.
        if bound is not None and bound.group(1) in (">=", "~=", "=="):
            return f"{name}=={bound.group(2)}"
    raise ValueError(f"{requirement!r} declares no lower bound")


def constraints(pyproject: dict[str, object]) -> list[str]:
    """The constraint lines, one per distinct dependency (the first declaration wins)."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    own = _normalize(str(project["name"]))
    lines: dict[str, str] = {}
    for requirement in requirements(pyproject):
        line = pin(requirement, own)
        if line is not None:
            key = _normalize(line.split("==")[0])
            if key in lines and lines[key] != line:
                raise ValueError(f"two lower bounds for {key}: {lines[key]} and {line}")
            lines.setdefault(key, line)
    return list(lines.values())


def extra_requirements(pyproject: dict[str, object], extra: str) -> list[str]:
    """The requirements of one extra, less references to the project itself."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    own = _normalize(str(project["name"]))
    found: list[str] = []
    for requirement in project["optional-dependencies"][extra]:
        match = REQUIREMENT.match(requirement)
        if match is None or _normalize(match.group(1)) != own:
            found.append(requirement)
    return found


def main(argv: list[str]) -> int:
    pyproject = _load(ROOT / "pyproject.toml")
    try:
        if argv[:1] == ["--requirements"] and len(argv) == 2:
            lines = extra_requirements(pyproject, argv[1])
        elif not argv:
            lines = constraints(pyproject)
        else:
            print("usage: lower_bounds.py [--requirements EXTRA]", file=sys.stderr)
            return 2
        print("\n".join(lines))
    except ValueError as exc:
        print(f"lower_bounds: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
