"""The one cattrs converter that turns JSON into models and back.

Lenient where the API may grow (unknown keys kept in the model's ``model_extra`` under their
wire names and written back on the way out; unknown enum values kept as pseudo-members),
strict where a wrong type would otherwise slip through silently (``"12"`` is not an int,
``true`` is not an int, ``12`` is not a string). A body that does not fit raises
:class:`ResponseShapeError`, which names the offending field.

Models are built on the hot path of every answer by functions generated per class
(``_structure_fn``: exact JSON types taken inline, no ``__init__`` call); whatever they do not
take inline goes to cattrs' functions, which raise the detailed errors. Unknown keys cost a
count of the missing ones; the extras dictionary is built only when there are some.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, TypeVar, Union, get_args, get_origin

import attrs

from . import models
from ._display import display_dict, model_html
from ._structure_fn import Rules, is_optional, make_structure_fn
from .models import RunStatus, SlackConnectToken, SourceType, User, UserRole, _Model

if TYPE_CHECKING:
    import cattrs

    converter: cattrs.Converter  # built on first use, see ``__getattr__``

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


# Run statuses by the server's word: building a ``RunStatus`` (a Python-level ``__new__``)
# costs about as much as the rest of a run's fields, and a server uses a handful of words.
# Bounded, so that a server inventing words cannot grow it.
_STATUSES: dict[str, RunStatus] = {}
_STATUSES_MAX: Final = 256


def _structure_status(value: Any, _: type) -> RunStatus:
    if type(value) is str:
        status = _STATUSES.get(value)
        if status is None:
            status = RunStatus(value)
            if len(_STATUSES) < _STATUSES_MAX:
                _STATUSES[value] = status
        return status
    if isinstance(value, str):
        return RunStatus(value)
    raise TypeError(f"expected a status string, got {type(value).__name__}")


def _open_enum(enum_cls: type[Enum]) -> Any:
    """A hook for an open enum: known values are members, others pseudo-members."""
    members = _ENUM_MEMBERS[enum_cls]

    def hook(value: Any, _: type) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            member = members.get(value)
            return enum_cls(value) if member is None else member
        raise TypeError(f"expected a string, got {type(value).__name__}")

    return hook


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _dict_or_str(value: Any, _: type) -> dict[str, Any] | str | None:
    if value is None or isinstance(value, (dict, str)):
        return value
    raise TypeError(f"expected an object or a string, got {type(value).__name__}")


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


Hook = Callable[[Any, Any], Any]


def _only(kind: type, label: str, hook: Hook) -> Hook:
    """Wrap ``hook`` so that it refuses any value that is not a ``kind``.

    cattrs builds a list from any iterable and a model from anything it can index, so
    without this ``"abc"`` would become ``["a", "b", "c"]``, ``{"a": 1}`` the list ``["a"]``,
    and ``[]`` a model made of defaults.
    """

    def checked(value: Any, type_: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {_json_name(value)}")
        return hook(value, type_)

    return checked


def _is_list(type_: Any) -> bool:
    return type_ is list or get_origin(type_) is list


def _is_dict(type_: Any) -> bool:
    return type_ is dict or get_origin(type_) is dict


_EXTRA: Final = "_model_extra"  # the field of ``models._Model`` that keeps unknown keys

# Fields stored under a private name (``_is_admin``) are named by their wire name in errors.
_WIRE_NAMES: dict[str, str] = {
    f".{field.name}": f".{field.alias}"
    for cls in vars(models).values()
    if isinstance(cls, type) and attrs.has(cls)
    for field in attrs.fields(cls)
    if field.name.startswith("_")
    and field.alias
    and field.alias != field.name
    and field.name != _EXTRA
}


def _wire_path(text: str) -> str:
    for private, wire in _WIRE_NAMES.items():
        text = text.replace(private, wire)
    return text


_STRICT_HOOKS: dict[Any, Any] = {
    int: _strict_int,
    float: _strict_float,
    str: _strict_str,
    bool: _strict_bool,
}


_OPEN_ENUMS: Final = (UserRole, SourceType)
_ENUM_MEMBERS: Final[dict[type[Enum], dict[str, Any]]] = {
    enum_cls: {m.value: m for m in enum_cls} for enum_cls in _OPEN_ENUMS
}
# What the generated structure functions may take inline (see ``_structure_fn``).
_FAST_RULES: Final = Rules(exact=_STRICT_HOOKS, lookups={RunStatus: _STATUSES, **_ENUM_MEMBERS})


def _optional_hook_factory(conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Hooks for ``X | None`` that look up the hook of ``X`` once, not on every value.

    cattrs' own ``Optional`` hook dispatches on the inner type at every call; most model
    fields are optional, so this is the parsing hot path. Same results and errors.
    """

    def factory(type_: Any) -> Any:
        inner_type = next(m for m in get_args(type_) if m is not type(None))
        inner = conv.get_structure_hook(inner_type)
        if inner_type in _OPEN_ENUMS:
            return inner  # already takes ``None``: one call less per value
        if _STRICT_HOOKS.get(inner_type) is inner:
            # The strict hooks return an exact ``str``/``int``/... unchanged: skip the call.
            exact: type = inner_type

            def passthrough_hook(value: Any, _: type) -> Any:
                if value is None or type(value) is exact:
                    return value
                return inner(value, exact)

            return passthrough_hook

        def hook(value: Any, _: type) -> Any:
            return None if value is None else inner(value, inner_type)

        return hook

    return factory


def _overrides(cls: type) -> dict[str, Any]:
    """Per-field wire rules of a model (cattrs ``override`` keyword arguments)."""
    from cattrs.gen import override

    rules: dict[str, Any] = {}
    if cls is User:
        # The deprecated ``is_admin`` is stored privately so that reading it can warn.
        rules["_is_admin"] = override(rename="is_admin")
    elif cls is SlackConnectToken:
        # ``received_at`` is stamped on arrival, never read from nor sent on the wire.
        rules["received_at"] = override(omit=True)
    if issubclass(cls, _Model):
        rules[_EXTRA] = override(omit=True)
    return rules


def _structure_model(conv: cattrs.Converter, *, generated: bool) -> Callable[[Any], Hook]:
    """Hooks for attrs classes: only from a JSON object; a model keeps its unknown keys.

    A model of ``codegen_async.models`` gets a function generated by ``_structure_fn``
    (callgrind: 12.7k instructions for the benchmark's run instead of 43.4k), which hands any
    value it does not take inline to the hook below. That hook runs two functions of
    cattrs: a fast one without per-field error capture, and the detailed one, run only when
    the fast one fails, to name every bad field. Other attrs classes get that hook alone.
    Keeping unknown keys costs a subset test of the keys; the extras dictionary is built
    only when it fails.
    """
    from cattrs.gen import make_dict_structure_fn

    def factory(type_: Any) -> Hook:
        cls = get_origin(type_) or type_
        rules = _overrides(cls)
        fast = make_dict_structure_fn(type_, conv, _cattrs_detailed_validation=False, **rules)
        detailed = make_dict_structure_fn(type_, conv, **rules)
        keeps_extra = issubclass(cls, _Model)
        known = frozenset(
            rules[f.name].rename or f.name if f.name in rules else f.name
            for f in attrs.fields(cls)
            if f.name not in rules or not rules[f.name].omit
        )

        def hook(value: Any, type_: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object, got {_json_name(value)}")
            try:
                model = fast(value, type_)
            except Exception:
                model = detailed(value, type_)  # raises, naming each offending field
            if not keeps_extra or known.issuperset(value):  # usually nothing unknown
                return model
            extra = {key: item for key, item in value.items() if key not in known}
            object.__setattr__(model, _EXTRA, extra)  # frozen: set once, while building
            return model

        if not generated:
            return hook
        function = make_structure_fn(
            type_,
            get_hook=conv.get_structure_hook,
            rules=_FAST_RULES,
            wire_names={name: rule.rename for name, rule in rules.items() if rule.rename},
            omitted=frozenset(name for name, rule in rules.items() if rule.omit),
            extra_field=_EXTRA if keeps_extra else None,
            known=known,
            slow=hook,
        )
        return hook if function is None else function

    return factory


def _unstructure_model(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any], Any]]:
    """Hooks that write a model under its wire names, its unknown keys after the known ones."""
    from cattrs.gen import make_dict_unstructure_fn

    def factory(type_: Any) -> Callable[[Any], Any]:
        cls = get_origin(type_) or type_
        dump = make_dict_unstructure_fn(type_, conv, **_overrides(cls))
        if not issubclass(cls, _Model):
            return dump

        def hook(model: Any) -> Any:
            data = dump(model)
            extra = model._model_extra
            if extra:
                for key, item in extra.items():
                    data.setdefault(key, item)  # a known field wins over a stray extra
            return data

        return hook

    return factory


def _make_converter(*, generated: bool = True) -> cattrs.Converter:
    """The converter; ``generated=False`` keeps cattrs' functions alone (tests compare)."""
    # cattrs is imported here, on the first answer parsed, not when the SDK is imported.
    import cattrs
    from cattrs.cols import list_structure_factory, mapping_structure_factory

    conv = cattrs.Converter(forbid_extra_keys=False, omit_if_default=False)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(RunStatus, _structure_status)
    # Before the explicit ``Union`` hooks below, so that those take precedence.
    conv.register_structure_hook_factory(is_optional, _optional_hook_factory(conv))
    # Containers and models only from the matching JSON type (see ``_only``).
    conv.register_structure_hook_factory(
        _is_list, lambda t: _only(list, "an array", list_structure_factory(t, conv))
    )
    conv.register_structure_hook_factory(
        _is_dict, lambda t: _only(dict, "an object", mapping_structure_factory(t, conv))
    )
    conv.register_structure_hook_factory(attrs.has, _structure_model(conv, generated=generated))
    conv.register_unstructure_hook_factory(attrs.has, _unstructure_model(conv))
    conv.register_unstructure_hook(RunStatus, lambda s: s.raw)
    conv.register_structure_hook(Union[dict[str, Any], str, None], _dict_or_str)  # noqa: UP007
    conv.register_unstructure_hook(Enum, lambda e: e.value)
    for open_enum in _OPEN_ENUMS:
        # By class: the ``X | None`` hook above then finds it (it would find ``str``'s).
        conv.register_structure_hook(open_enum, _open_enum(open_enum))
        # ``str`` enums would otherwise pass through as members (cattrs treats them as ``str``).
        conv.register_unstructure_hook(open_enum, _enum_value)
        conv.register_unstructure_hook(Union[open_enum, None], _enum_value)  # noqa: UP007
    return conv


_converter: cattrs.Converter | None = None
_structure_hooks: dict[Any, Callable[[Any, Any], Any]] = {}


def _get_converter() -> cattrs.Converter:
    """The converter, built on first use (two threads racing build two equal ones)."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


def __getattr__(name: str) -> Any:
    # ``converter`` is built lazily: importing cattrs and generating the hooks costs
    # several milliseconds that an ``import codegen_async`` should not pay.
    if name == "converter":
        return _get_converter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def structure(data: Any, cls: Any) -> Any:
    """Build ``cls`` from decoded JSON, or raise :class:`ResponseShapeError`.

    ``Any`` (operations whose answer the API leaves undescribed) returns ``data`` unchanged.
    """
    if cls is Any:
        return data
    hook = _structure_hooks.get(cls)
    if hook is None:
        # cattrs would look the hook up again on every call; the converter never changes.
        hook = _structure_hooks[cls] = (_converter or _get_converter()).get_structure_hook(cls)
    try:
        return hook(data, cls)
    except Exception as exc:
        import cattrs  # already loaded by the converter

        if isinstance(exc, cattrs.BaseValidationError):
            messages = [_wire_path(m) for m in cattrs.transform_error(exc)]
            first = messages[0] if messages else str(exc)
            path = first.rsplit(" @ ", 1)[1] if " @ " in first else None
            raise ResponseShapeError("; ".join(messages[:5]), path) from None
        if isinstance(exc, (TypeError, ValueError, KeyError, AttributeError)):
            raise ResponseShapeError(f"{type(exc).__name__}: {exc} @ $", "$") from None
        raise


def unstructure(obj: Any) -> Any:
    """Turn a model (or a container of models) back into JSON-ready data."""
    if attrs.has(type(obj)) or isinstance(obj, (list, dict, tuple, Enum)):
        return (_converter or _get_converter()).unstructure(obj)
    return obj


models.install_codec(
    structure=structure, unstructure=unstructure, display=display_dict, html=model_html
)
