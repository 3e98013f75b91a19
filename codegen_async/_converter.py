"""The one cattrs converter that turns JSON into models and back.

Lenient where the API may grow (unknown keys ignored, unknown enum values kept as strings),
strict where a wrong type would otherwise slip through silently (``"12"`` is not an int,
``true`` is not an int, ``12`` is not a string). A body that does not fit raises
:class:`ResponseShapeError`, which names the offending field.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar, Union

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .models import RunStatus, SlackConnectToken, SourceType, User, UserRole

__all__ = ["ResponseShapeError", "converter", "structure", "unstructure"]

T = TypeVar("T")


class ResponseShapeError(ValueError):
    """A JSON value does not fit its model; ``path`` names the field (``$.items[0].id``)."""

    def __init__(self, message: str, path: str | None) -> None:
        super().__init__(message)
        self.path = path


def _strict_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _strict_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _strict_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _structure_status(value: Any, _: type) -> RunStatus:
    if isinstance(value, str):
        return RunStatus(value)
    raise TypeError(f"expected a status string, got {type(value).__name__}")


def _open_enum(enum_cls: type[Enum]) -> Any:
    """A hook for ``Enum | str | None``: known values become members, others stay strings."""
    members = {m.value: m for m in enum_cls}

    def hook(value: Any, _: type) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return members.get(value, value)
        raise TypeError(f"expected a string, got {type(value).__name__}")

    return hook


def _dict_or_str(value: Any, _: type) -> dict[str, Any] | str | None:
    if value is None or isinstance(value, (dict, str)):
        return value
    raise TypeError(f"expected an object or a string, got {type(value).__name__}")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, omit_if_default=False)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(RunStatus, _structure_status)
    conv.register_unstructure_hook(RunStatus, lambda s: s.raw)
    conv.register_structure_hook(Union[UserRole, str, None], _open_enum(UserRole))  # noqa: UP007
    conv.register_structure_hook(
        Union[SourceType, str, None],  # noqa: UP007
        _open_enum(SourceType),
    )
    conv.register_structure_hook(Union[dict[str, Any], str, None], _dict_or_str)  # noqa: UP007
    conv.register_unstructure_hook(Enum, lambda e: e.value)

    # The deprecated ``is_admin`` is stored privately so that reading it can warn.
    conv.register_structure_hook(
        User, make_dict_structure_fn(User, conv, _is_admin=override(rename="is_admin"))
    )
    conv.register_unstructure_hook(
        User, make_dict_unstructure_fn(User, conv, _is_admin=override(rename="is_admin"))
    )
    # ``received_at`` is stamped on arrival, never read from nor sent on the wire.
    conv.register_structure_hook(
        SlackConnectToken,
        make_dict_structure_fn(SlackConnectToken, conv, received_at=override(omit=True)),
    )
    conv.register_unstructure_hook(
        SlackConnectToken,
        make_dict_unstructure_fn(SlackConnectToken, conv, received_at=override(omit=True)),
    )
    return conv


converter = _make_converter()


def structure(data: Any, cls: Any) -> Any:
    """Build ``cls`` from decoded JSON, or raise :class:`ResponseShapeError`.

    ``Any`` (operations whose answer the API leaves undescribed) returns ``data`` unchanged.
    """
    if cls is Any:
        return data
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc)
        first = messages[0] if messages else str(exc)
        path = first.rsplit(" @ ", 1)[1] if " @ " in first else None
        raise ResponseShapeError("; ".join(messages[:5]), path) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ResponseShapeError(f"{type(exc).__name__}: {exc} @ $", "$") from None


def unstructure(obj: Any) -> Any:
    """Turn a model (or a container of models) back into JSON-ready data."""
    if attrs.has(type(obj)) or isinstance(obj, (list, dict, tuple, Enum)):
        return converter.unstructure(obj)
    return obj
