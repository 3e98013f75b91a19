"""Generated structure functions for the models: the fast path of every answer.

cattrs' own generated function (``make_dict_structure_fn``) spends most of a model's cost
around the values rather than on them: one hook call per field, the model's ``__init__``
called with keyword arguments (the keys of a decoded JSON object are not interned, so CPython
matches each one by comparing strings), and a frozen ``__init__`` that stores every field
through ``object.__setattr__``. Callgrind counted 43k instructions to structure the
benchmark's run; with the function generated here, 12.7k.

What it does instead, per model class, in one function built from source:

- a value of exactly the JSON type a field wants (``type(v) is int``, ``is str``, ``None``
  for an optional field, a known enum or status word) is taken inline; anything else goes to
  the field's own converter hook, so every coercion and refusal stays the converter's;
- lists and ``dict[str, Any]`` objects are copied inline when their items need no hook;
- the instance is built without ``__init__``: its slots are set on a private subclass that
  does not freeze attribute stores (a plain slot store each), and the object is then given
  the model's class. The result is an ordinary instance of the model (same type, equality,
  hash, pickling, frozenness); only classes of ``codegen_async.models`` without validators,
  converters or ``__attrs_post_init__`` are built this way.

It is only a fast path. It returns a model only when every value passed a check that the
converter's hook would have passed unchanged (or the hook itself took it); on any exception
it hands the value to ``slow``, the converter's previous hook (cattrs' functions), which
either builds the model (if the fast path was merely cautious) or raises the detailed error
naming the field. Results and errors are therefore those of the cattrs path.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, Final, Union, get_args, get_origin

import attrs

__all__ = ["Rules", "is_optional", "make_structure_fn"]

Hook = Callable[[Any, Any], Any]

_MODELS_MODULE: Final = "codegen_async.models"
_MISSING: Final = object()


@attrs.frozen
class Rules:
    """What the converter knows about its own hooks, for :func:`make_structure_fn`.

    Attributes:
        exact: Types whose hook returns a value of exactly that type unchanged
            (``int``, ``str``, ...), mapped to that hook.
        lookups: Types whose hook maps a ``str`` to the value found in this mapping when it
            is there (open enums: their members; run statuses: the converter's cache).
    """

    exact: Mapping[Any, Hook]
    lookups: Mapping[Any, Mapping[str, Any]]


class _Source:
    """The lines and globals of one generated function."""

    def __init__(self, get_hook: Callable[[Any], Hook], rules: Rules) -> None:
        self.lines: list[str] = []
        self.globals: dict[str, Any] = {"_MISSING": _MISSING}
        self._get_hook = get_hook
        self._rules = rules

    def name(self, prefix: str, value: Any) -> str:
        """A global name bound to ``value`` in the generated function."""
        name = f"{prefix}{len(self.globals)}"
        self.globals[name] = value
        return name

    def hook_call(self, var: str, type_: Any) -> str:
        return f"{self.name('_h', self._get_hook(type_))}({var}, {self.name('_t', type_)})"

    def convert(self, var: str, type_: Any, indent: str) -> None:
        """Lines that turn ``var`` into the value the field's hook would give."""
        rules = self._rules
        add = self.lines.append
        if type_ is Any:
            return
        hook = self._get_hook(type_)
        if type_ in rules.exact and rules.exact[type_] is hook:
            kind = self.name("_k", type_)
            add(f"{indent}if type({var}) is not {kind}: {var} = {self.hook_call(var, type_)}")
        elif type_ in rules.lookups:
            lookup = self.name("_l", rules.lookups[type_].get)
            add(f"{indent}_w = {lookup}({var}) if type({var}) is str else None")
            add(f"{indent}{var} = {self.hook_call(var, type_)} if _w is None else _w")
        elif is_optional(type_):
            # The converter's ``X | None`` hooks give None for None, else X's hook's value.
            add(f"{indent}if {var} is not None:")
            inner = next(m for m in get_args(type_) if m is not type(None))
            before = len(self.lines)
            self.convert(var, inner, indent + "    ")
            if len(self.lines) == before:
                add(f"{indent}    pass")
        elif get_origin(type_) is list and len(get_args(type_)) == 1:
            add(f"{indent}if type({var}) is list:")
            add(f"{indent}    {var} = {self._list_items(var, get_args(type_)[0])}")
            add(f"{indent}else:")
            add(f"{indent}    {var} = {self.hook_call(var, type_)}")
        elif get_origin(type_) is dict and get_args(type_) == (str, Any) and self._exact(str):
            # ``dict(**d)`` copies the object and refuses any key that is not a str, as the
            # converter's hook does (keys through the str hook, values unchanged).
            add(f"{indent}if type({var}) is dict:")
            add(f"{indent}    {var} = dict(**{var})")
            add(f"{indent}else:")
            add(f"{indent}    {var} = {self.hook_call(var, type_)}")
        else:
            add(f"{indent}{var} = {self.hook_call(var, type_)}")

    def _exact(self, type_: Any) -> bool:
        return type_ in self._rules.exact and self._rules.exact[type_] is self._get_hook(type_)

    def _list_items(self, var: str, item: Any) -> str:
        if item is Any:
            return f"list({var})"
        if self._exact(item):
            kind = self.name("_k", item)
            return f"[_e if type(_e) is {kind} else {self.hook_call('_e', item)} for _e in {var}]"
        return f"[{self.hook_call('_e', item)} for _e in {var}]"


def is_optional(type_: Any) -> bool:
    """``X | None`` with exactly one other member."""
    if get_origin(type_) not in (Union, types.UnionType):
        return False
    members = get_args(type_)
    return len(members) == 2 and type(None) in members


def _field_types(cls: type, type_: Any) -> dict[str, Any] | None:
    """Field name -> type, with a generic class's parameters filled in (None: unsupported)."""
    attrs.resolve_types(cls)
    params: tuple[Any, ...] = getattr(cls, "__parameters__", ())
    args = get_args(type_)
    if len(params) != len(args):
        return None  # a generic class without its arguments: leave it to cattrs
    mapping = dict(zip(params, args, strict=True))
    found: dict[str, Any] = {}
    for field in attrs.fields(cls):
        field_type = field.type
        if field_type in mapping:
            field_type = mapping[field_type]
        elif getattr(field_type, "__parameters__", ()):
            field_type = field_type[tuple(mapping[p] for p in field_type.__parameters__)]
        found[field.name] = field_type
    return found


def _buildable(cls: type) -> bool:
    """Whether instances may be built by setting slots instead of calling ``__init__``."""
    return (
        cls.__module__ == _MODELS_MODULE
        and attrs.has(cls)
        and not hasattr(cls, "__attrs_pre_init__")
        and not hasattr(cls, "__attrs_post_init__")
        and all(
            f.init
            and f.validator is None
            and f.converter is None
            and not getattr(_factory(f.default), "takes_self", False)
            for f in attrs.fields(cls)
        )
    )


def _builder(cls: type) -> type:
    """A subclass of ``cls`` that stores attributes plainly (both of the frozen methods go:
    CPython stores straight into a slot only when neither is overridden) and whose
    ``__init__`` does nothing, so that calling it makes an empty instance."""
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}._builder",
    }
    return type(cls.__name__, (cls,), namespace)


def _factory(default: Any) -> Any:
    """The ``attrs.Factory`` of a default, or None for a plain value."""
    return default if isinstance(default, attrs.Factory) else None  # type: ignore[arg-type]


def _default(src: _Source, field: attrs.Attribute[Any]) -> str:
    """The expression of a field's default (a factory is called each time)."""
    factory = _factory(field.default)
    if factory is not None:
        return f"{src.name('_f', factory.factory)}()"
    return src.name("_d", field.default)


def make_structure_fn(
    type_: Any,
    *,
    get_hook: Callable[[Any], Hook],
    rules: Rules,
    wire_names: Mapping[str, str],
    omitted: frozenset[str],
    extra_field: str | None,
    known: frozenset[str],
    slow: Hook,
) -> Hook | None:
    """A structure hook for the model ``type_`` (see the module's notes), or None.

    Args:
        type_: The model class, or a generic model with its arguments (``Page[AgentRun]``).
        get_hook: The converter's structure hook of a type.
        rules: Which of the converter's hooks may be skipped or inlined.
        wire_names: Field name -> key in the JSON object, for renamed fields.
        omitted: Fields never read from the JSON object (left to their defaults).
        extra_field: The field that keeps unknown keys (None: unknown keys are dropped).
        known: Every key the model reads.
        slow: The hook to hand the value to when the fast path does not apply.

    Returns:
        None when the class cannot be built this way (the caller keeps cattrs' function).
    """
    cls = get_origin(type_) or type_
    if not _buildable(cls):
        return None
    field_types = _field_types(cls, type_)
    if field_types is None:
        return None
    src = _Source(get_hook, rules)
    add = src.lines.append
    slow_name = src.name("_slow", slow)
    add("def structure(value, type_):")
    add(f"    if type(value) is not dict: return {slow_name}(value, type_)")
    add("    try:")
    add("        get = value.get")
    add("        missing = 0")
    stores: list[str] = []
    read: set[str] = set()
    for i, field in enumerate(attrs.fields(cls)):
        var = f"v{i}"
        stores.append(f"    o.{field.name} = {var}")
        if field.name == extra_field:
            stores.pop()  # set below, from the unknown keys
            continue
        if field.name in omitted:
            add(f"        {var} = {_default(src, field)}")
            continue
        key = wire_names.get(field.name, field.name)
        read.add(key)
        if field.default is attrs.NOTHING:
            add(f"        {var} = value[{key!r}]")
            src.convert(var, field_types[field.name], "        ")
            continue
        add(f"        {var} = get({key!r}, _MISSING)")
        add(f"        if {var} is _MISSING:")
        add("            missing += 1")
        add(f"            {var} = {_default(src, field)}")
        add("        else:")
        before = len(src.lines)
        src.convert(var, field_types[field.name], "            ")
        if len(src.lines) == before:
            add("            pass")
    if read != known:
        return None  # the converter reads other keys than these fields: leave it to cattrs
    if extra_field is not None:
        # No unknown key when every key of the object was read: the keys read are those
        # found, so counting what was missing avoids a subset test (2k instructions).
        known_name = src.name("_known", known)
        add(f"        if len(value) + missing == {len(known)}:")
        add("            extra = None")
        add("        else:")
        add(f"            extra = {{k: i for k, i in value.items() if k not in {known_name}}}")
        stores.append(f"    o.{extra_field} = extra")
    add("    except Exception:")
    add(f"        return {slow_name}(value, type_)  # raises the detailed error, or builds it")
    # Nothing below can fail: the object is never seen half-built.
    add(f"    o = {src.name('_builder', _builder(cls))}()")
    src.lines.extend(stores)
    add(f"    o.__class__ = {src.name('_cls', cls)}")
    add("    return o")
    text = "\n".join(src.lines)
    namespace = dict(src.globals)
    exec(compile(text, f"<structure {cls.__qualname__}>", "exec"), namespace)
    function: Hook = namespace["structure"]
    function.__doc__ = text  # the source, for whoever debugs it
    return function
