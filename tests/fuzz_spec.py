"""The OpenAPI description as data for the fuzz tests: loaded once, ``$ref`` inlined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "codegen-openapi3.json").read_text()
)
COMPONENTS: dict[str, Any] = SPEC["components"]["schemas"]


def resolve(node: Any) -> Any:
    """Inline every ``#/components/schemas/...`` reference (the description has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = resolve(COMPONENTS[node["$ref"].rsplit("/", 1)[-1]])
            rest = {k: resolve(v) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def bounded(node: Any) -> Any:
    """The same schema with small arrays and few unknown keys, for faster generation.

    Every document it allows is valid against the original (the tests check it).
    """
    if isinstance(node, dict):
        out = {k: bounded(v) for k, v in node.items()}
        if out.get("type") == "array":
            out.setdefault("maxItems", 5)
        if out.get("type") == "object":
            out.setdefault("maxProperties", len(out.get("properties", {})) + 3)
        return out
    if isinstance(node, list):
        return [bounded(v) for v in node]
    return node
