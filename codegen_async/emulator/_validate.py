"""Request validation from the endpoint table, answering in FastAPI's (pydantic v2) words.

One :class:`RequestValidator` is compiled per operation when the app is built; at request
time it converts path and query strings and checks the JSON body against the table's
:class:`~codegen_async._endpoints.Param` and :class:`~codegen_async._endpoints.RequestBody`
declarations, collecting every problem as ``{"type", "loc", "msg", "input"[, "ctx"]}``.

It is stricter than the service in one way: JSON bodies get no string-to-number or
bool-to-number coercion, so a client that sends the wrong JSON type is caught in tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._endpoints import Endpoint, Param, RequestBody

__all__ = ["RequestValidator", "ValidationDetail"]

ValidationDetail = dict[str, Any]

_TRUE: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE: Final = frozenset({"0", "off", "f", "false", "n", "no"})

# The pydantic error for a value that is not of the expected JSON type.
_TYPE_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "integer": ("int_type", "Input should be a valid integer"),
    "string": ("string_type", "Input should be a valid string"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "array": ("list_type", "Input should be a valid list"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "number": ("float_type", "Input should be a valid number"),
}


def _detail(
    kind: str, loc: Sequence[str | int], msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> ValidationDetail:
    detail: ValidationDetail = {"type": kind, "loc": list(loc), "msg": msg, "input": value}
    if ctx is not None:
        detail["ctx"] = ctx
    return detail


def _expected(options: Sequence[str]) -> str:
    quoted = [f"'{option}'" for option in options]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _parse_int(text: str) -> int | None:
    """An integer from a path or query string: optional sign and ASCII digits only."""
    s = text.strip()
    digits = s[1:] if s and s[0] in "+-" else s
    if digits.isascii() and digits.isdigit():
        return int(s)
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _range_errors(
    loc: Sequence[str | int], value: int, low: int | None, high: int | None
) -> list[ValidationDetail]:
    if low is not None and value < low:
        return [
            _detail(
                "greater_than_equal",
                loc,
                f"Input should be greater than or equal to {low}",
                value,
                {"ge": low},
            )
        ]
    if high is not None and value > high:
        return [
            _detail(
                "less_than_equal",
                loc,
                f"Input should be less than or equal to {high}",
                value,
                {"le": high},
            )
        ]
    return []


class RequestValidator:
    """Converts and checks one operation's path, query and body values."""

    __slots__ = ("_body", "_path", "_query")

    def __init__(self, endpoint: Endpoint) -> None:
        self._path: tuple[Param, ...] = endpoint.path_params
        self._query: tuple[Param, ...] = endpoint.query_params
        self._body: RequestBody | None = endpoint.body

    @property
    def has_body(self) -> bool:
        return self._body is not None

    def validate(
        self,
        match_info: Mapping[str, str],
        query: Mapping[str, str],
        raw_body: bytes | None,
    ) -> tuple[dict[str, Any], list[ValidationDetail]]:
        """Typed values by parameter name (the body under ``"body"``), and the errors."""
        values: dict[str, Any] = {}
        errors: list[ValidationDetail] = []
        for param in self._path:
            text = match_info[param.name]
            number = _parse_int(text)
            if number is None:
                errors.append(
                    _detail(
                        "int_parsing",
                        ("path", param.name),
                        "Input should be a valid integer, unable to parse string as an integer",
                        text,
                    )
                )
            else:
                values[param.name] = number
        for param in self._query:
            self._query_param(param, query.get(param.name), values, errors)
        if self._body is not None:
            body = self._check_body(self._body, raw_body, errors)
            if body is not None:
                values["body"] = body
        return values, errors

    @staticmethod
    def _query_param(
        param: Param,
        text: str | None,
        values: dict[str, Any],
        errors: list[ValidationDetail],
    ) -> None:
        loc = ("query", param.name)
        if text is None:
            if param.required:
                errors.append(_detail("missing", loc, "Field required", None))
            else:
                values[param.name] = param.default
            return
        if param.type is bool:
            word = text.strip().lower()
            if word in _TRUE:
                values[param.name] = True
            elif word in _FALSE:
                values[param.name] = False
            else:
                errors.append(
                    _detail(
                        "bool_parsing",
                        loc,
                        "Input should be a valid boolean, unable to interpret input",
                        text,
                    )
                )
            return
        if param.type is str:
            if param.enum is not None and text not in param.enum:
                expected = _expected(param.enum)
                errors.append(
                    _detail(
                        "enum", loc, f"Input should be {expected}", text, {"expected": expected}
                    )
                )
                return
            values[param.name] = text
            return
        number = _parse_int(text)
        if number is None:
            errors.append(
                _detail(
                    "int_parsing",
                    loc,
                    "Input should be a valid integer, unable to parse string as an integer",
                    text,
                )
            )
            return
        problems = _range_errors(loc, number, param.minimum, param.maximum)
        if problems:
            errors.extend(problems)
            return
        values[param.name] = number

    @staticmethod
    def _check_body(
        spec: RequestBody, raw: bytes | None, errors: list[ValidationDetail]
    ) -> dict[str, Any] | None:
        if not raw or not raw.strip():
            errors.append(_detail("missing", ("body",), "Field required", None))
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(
                _detail(
                    "json_invalid", ("body", exc.pos), "JSON decode error", {}, {"error": exc.msg}
                )
            )
            return None
        except UnicodeDecodeError:
            errors.append(
                _detail(
                    "json_invalid", ("body", 0), "JSON decode error", {}, {"error": "Invalid UTF-8"}
                )
            )
            return None
        if not isinstance(data, dict):
            errors.append(
                _detail(
                    "model_attributes_type",
                    ("body",),
                    "Input should be a valid dictionary or object to extract fields from",
                    data,
                )
            )
            return None
        before = len(errors)
        for name in spec.required:
            if name not in data:
                errors.append(_detail("missing", ("body", name), "Field required", data))
        for name, types in spec.fields.items():
            if name not in data:
                continue
            value = data[name]
            kind = _json_type(value)
            loc: tuple[str | int, ...] = ("body", name)
            if kind == "number" and "integer" in types and float(value).is_integer():
                value = data[name] = int(value)  # pydantic accepts 3.0 for an int
                kind = "integer"
            if kind not in types:
                expected = next(t for t in types if t != "null")
                if kind == "number" and expected == "integer":
                    errors.append(
                        _detail(
                            "int_from_float",
                            loc,
                            "Input should be a valid integer, got a number with a fractional part",
                            value,
                        )
                    )
                else:
                    error_type, message = _TYPE_ERRORS[expected]
                    errors.append(_detail(error_type, loc, message, value))
                continue
            if value is None:
                continue
            options = spec.enums.get(name)
            if options is not None and value not in options:
                expected_text = _expected(options)
                errors.append(
                    _detail(
                        "literal_error",
                        loc,
                        f"Input should be {expected_text}",
                        value,
                        {"expected": expected_text},
                    )
                )
                continue
            bounds = spec.ranges.get(name)
            if bounds is not None:
                errors.extend(_range_errors(loc, value, bounds[0], bounds[1]))
            item_type = spec.items.get(name)
            if item_type is not None:
                RequestValidator._check_items(loc, value, item_type, errors)
        if len(errors) > before:
            return None
        return data

    @staticmethod
    def _check_items(
        loc: tuple[str | int, ...], value: Any, item_type: str, errors: list[ValidationDetail]
    ) -> None:
        entries: Any = enumerate(value) if isinstance(value, list) else value.items()
        error_type, message = _TYPE_ERRORS[item_type]
        for key, item in entries:
            if _json_type(item) != item_type:
                errors.append(_detail(error_type, (*loc, key), message, item))
