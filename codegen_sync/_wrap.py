"""Deriving a blocking client class from an asyncio one, member by member.

``class Agent(SyncClient, wraps=AsyncAgent)`` is the whole definition of the blocking client:
:meth:`SyncClient.__init_subclass__` walks the public members of the async class and gives
the subclass a blocking twin of each, so a method added to ``AsyncAgent`` appears on
``Agent`` with no edit here. What each member becomes is decided by the rules table of
``_rules`` (which the stub generator reads too); this module builds the twins:

- ``async def f(...) -> T`` becomes ``def f(...) -> T``: the coroutine is created in the
  calling thread (so wrong arguments raise there, at once) and run on the portal's loop.
- An async generator function, or a plain method returning an async iterator (``iter_users``,
  ``iter_runs``, ...), becomes a method returning a :class:`SyncIterator`, which pulls one item
  at a time through the loop and closes the async iterator when it is closed or collected.
- A result that is an async context manager becomes a :class:`SyncContextManager`.
- Properties are forwarded; other plain methods run on the loop thread (they may need it).

Each twin keeps the async method's name, docstring and parameters (``__signature__``, with
the return annotation rewritten by :func:`~codegen_sync._annotations.sync_annotation`) and
points to it through ``__wrapped__``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar

from typing_extensions import Self

from codegen_async.errors import ClientClosedError

from ._annotations import SYNC_NAMES, sync_annotation
from ._portal import Portal, current_portal, get_portal
from ._rules import Twin, wrapped_members

__all__ = ["SyncClient", "SyncContextManager", "SyncIterator", "to_sync"]

T = TypeVar("T")

# Binding a client to the portal happens rarely (first use, and first use after a fork);
# one lock for all clients keeps each client small. Re-created in a forked child, where
# another thread of the parent may have held it.
_bind_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    global _bind_lock
    _bind_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def _close_on(portal: Portal | None, aclose: Callable[[], Awaitable[Any]]) -> None:
    """Run an async ``aclose`` on ``portal``'s loop and wait for it.

    Nothing to do without a portal (never used), with a forked child's copy of the parent's
    portal, or while the portal is stopping (its shutdown closes what it tracks). From the
    loop thread itself (a callback) it cannot wait: the close is scheduled instead.
    """
    if portal is None or portal is not current_portal() or portal.stopping:
        return
    if portal.in_loop_thread:
        portal.spawn(aclose())
    else:
        portal.call(aclose())


class _ClosedOnExit:
    """``with x:`` closes ``x`` on the way out."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- iterators and context managers ------------------------------------------------------
async def _anext(source: AsyncIterator[T]) -> T:
    return await source.__anext__()


async def _aiter(source: Any) -> Any:
    return source.__aiter__()


async def _aenter(source: Any) -> Any:
    return await source.__aenter__()


async def _aexit(
    source: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> Any:
    return await source.__aexit__(exc_type, exc, tb)


class SyncIterator(_ClosedOnExit, Iterator[T]):
    """A blocking iterator over an async iterator that lives on the portal's loop.

    Each ``next()`` runs one ``__anext__`` on the loop, so items (and the pages behind them)
    are fetched only as they are consumed. ``close()``, leaving a ``with`` block, or garbage
    collection closes the async iterator (its ``aclose``), ending any request it has open.
    Not safe to advance from several threads at once (like a generator).
    """

    __slots__ = ("__weakref__", "_closed", "_portal", "_source")

    def __init__(self, portal: Portal, source: AsyncIterator[T]) -> None:
        self._portal = portal
        self._source = source
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SyncIterator over {self._source!r} ({state})>"

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        try:
            return self._portal.call(_anext(self._source))
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None

    def close(self) -> None:
        """Close the underlying async iterator (and any request it has open). Idempotent."""
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            _close_on(self._portal, aclose)

    def __del__(self) -> None:
        # Never block in a finalizer (it may run on the loop thread): schedule the close.
        if getattr(self, "_closed", True):
            return
        self._closed = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            self._portal.spawn(aclose())


class SyncContextManager(AbstractContextManager[T]):
    """A blocking context manager over an async one that lives on the portal's loop."""

    __slots__ = ("_portal", "_source")

    def __init__(self, portal: Portal, source: Any) -> None:
        self._portal = portal
        self._source = source

    def __enter__(self) -> T:
        result: T = to_sync(self._portal, self._portal.call(_aenter(self._source)))
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        result: bool | None = self._portal.call(_aexit(self._source, exc_type, exc, tb))
        return result


_PLAIN, _ITERATOR, _ITERABLE, _CONTEXT = range(4)
# What each type returned so far is (a failed ``hasattr`` costs an exception, on every call).
_kinds: dict[type, int] = {}


def _kind(cls: type) -> int:
    if hasattr(cls, "__anext__"):
        kind = _ITERATOR
    elif hasattr(cls, "__aiter__"):
        kind = _ITERABLE
    elif hasattr(cls, "__aenter__") and hasattr(cls, "__aexit__"):
        kind = _CONTEXT
    else:
        kind = _PLAIN
    if len(_kinds) >= 512:  # types made on the fly should not grow it forever
        _kinds.clear()
    _kinds[cls] = kind
    return kind


def to_sync(portal: Portal, value: Any) -> Any:
    """``value``, with an async iterator or async context manager made blocking."""
    cls = type(value)
    kind = _kinds.get(cls)
    if kind is None:
        kind = _kind(cls)
    if kind == _PLAIN:
        return value
    if kind == _ITERATOR:
        return SyncIterator(portal, value)
    if kind == _ITERABLE:
        return SyncIterator(portal, portal.call(_aiter(value)))
    return SyncContextManager(portal, value)


async def _invoke(
    fn: Callable[..., Any], client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a plain method on the loop thread; await what it returns if that is awaitable."""
    result = fn(client, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


# --- one client's state ----------------------------------------------------------------------
class _Arguments:
    """The async client's arguments, kept to build it again after a fork.

    No repr shows them (they hold the token), so neither does a traceback's locals.
    """

    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return "<arguments hidden>"


class _State:
    """What a blocking client holds; kept apart from it so that its finalizer can use it.

    ``portal`` is the portal ``client`` is bound to (``None`` before first use, and after
    ``close``). In a forked child it is the parent's, which tells ``bind`` to build a new
    async client for the child's own loop.
    """

    __slots__ = ("arguments", "client", "closed", "derived", "factory", "name", "parent", "portal")

    def __init__(
        self, name: str, factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.name = name
        self.factory = factory
        self.arguments = _Arguments(args, kwargs)
        self.client: Any = factory(*args, **kwargs)  # checks the settings now, in the caller
        self.portal: Portal | None = None
        self.closed = False
        # The blocking client this one was derived from (``with_options``), kept alive while
        # this one is in use: the two share one async client's session.
        self.parent: SyncClient | None = None
        self.derived = False  # others were derived from this one (they share its session)

    def bind(self, portal: Portal) -> tuple[Portal, Any]:
        with _bind_lock:
            if self.closed:
                raise ClientClosedError(f"this {self.name} is closed; create a new one")
            if self.portal is not portal:
                if self.portal is not None:
                    # First use after os.fork(): the client we hold belongs to the parent's
                    # loop (which the parent keeps using); build one for this process.
                    arguments = self.arguments
                    self.client = self.factory(*arguments.args, **arguments.kwargs)
                self.portal = portal
                portal.track(self.client)
            return portal, self.client


def _client_repr(state: _State) -> str:
    """``Agent(org_id=..., base_url=...)``: the async client's repr under the sync name."""
    inner = repr(state.client)
    prefix = type(state.client).__name__
    if inner.startswith(prefix):
        return state.name + inner[len(prefix) :]
    return f"<{state.name} wrapping {inner}>"


def _finalize(state: _State) -> None:
    """A client was garbage-collected without ``close()``: close it on the loop, and warn."""
    if state.closed or state.parent is not None:
        return  # a derived client's session is its parent's, closed with the parent
    state.closed = True
    portal = state.portal
    if portal is None or portal is not current_portal() or portal.stopping:
        return  # never used (no connection), a forked child's copy, or exit closes it
    portal.spawn(state.client.aclose())  # first: the warning may be turned into an error
    warnings.warn(
        f"unclosed {_client_repr(state)}: use 'with {state.name}(...) as agent:' or call "
        "agent.close()",
        ResourceWarning,
        stacklevel=3,  # past weakref.finalize: the line that dropped the last reference
    )


class SyncClient(_ClosedOnExit):
    """Base of a blocking client derived from an asyncio client class.

    Subclass it as ``class Agent(SyncClient, wraps=AsyncAgent)``; the constructor takes the
    async class's arguments. A client is a context manager; :meth:`close` closes it.
    """

    _async_class: ClassVar[type[Any]]
    _state: _State
    _finalizer: weakref.finalize[[_State], SyncClient]

    def __init_subclass__(cls, *, wraps: type[Any] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if wraps is not None:
            _derive(cls, wraps)

    def _setup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        name = type(self).__name__
        if kwargs.get("session") is not None:
            # An aiohttp session belongs to the loop that made it; ours runs on its own.
            raise TypeError(
                f"{name} cannot take session=: an aiohttp session is bound to the event loop "
                f"that made it, and {name} runs on its own; pass proxy=, ssl=, trust_env= "
                "or connection_limit= instead"
            )
        self._state = state = _State(name, type(self)._async_class, args, kwargs)
        # Holds ``state`` only, never ``self``; at exit the portal closes open clients itself.
        self._finalizer = weakref.finalize(self, _finalize, state)
        self._finalizer.atexit = False

    def _adopt(self, client: Any, rebuild: Callable[[Any], Any]) -> Self:
        """A blocking client over ``client``, an async client derived from this one's.

        ``rebuild(async_client)`` makes it again from a fresh parent client (first use
        after ``os.fork()``).
        """
        parent = self._state

        def factory() -> Any:
            arguments = parent.arguments
            return rebuild(parent.factory(*arguments.args, **arguments.kwargs))

        other = object.__new__(type(self))
        state = object.__new__(_State)
        state.name, state.factory, state.arguments = parent.name, factory, _Arguments((), {})
        state.client, state.portal, state.closed = client, None, False
        state.parent, state.derived = self, False
        parent.derived = True
        other._state = state
        other._finalizer = weakref.finalize(other, _finalize, state)
        other._finalizer.atexit = False
        return other

    def _bound(self) -> tuple[Portal, Any]:
        """The portal and the async client to run a call with (binding them on first use)."""
        state = self._state
        portal = get_portal()
        if state.portal is portal:
            return portal, state.client
        return state.bind(portal)

    def close(self) -> None:
        """Close the client's HTTP session and connections. Safe to call more than once."""
        state = self._state
        with _bind_lock:
            if state.closed:
                return
            state.closed = True
            portal, state.portal = state.portal, None
        self._finalizer.detach()
        if portal is None and (state.parent is not None or state.derived):
            # Never used, but its session is shared with a with_options relative: closing
            # it closes theirs too (as with the asyncio client), so it needs the loop.
            portal = get_portal()
        _close_on(portal, state.client.aclose)

    def __repr__(self) -> str:
        state = getattr(self, "_state", None)  # None while __init__ is failing
        if state is None:
            return f"{type(self).__name__}(<not configured>)"
        return _client_repr(state)


# --- derivation ------------------------------------------------------------------------------
class _Evaluator:
    """Evaluates one module's annotation texts (each distinct text once)."""

    def __init__(self, module_globals: Mapping[str, Any]) -> None:
        self.namespace = {**SYNC_NAMES, **module_globals}  # plus Iterator & co.
        self.cache: dict[str, Any] = {}

    def __call__(self, annotations: Mapping[str, Any]) -> dict[str, Any]:
        """Annotations as objects where they evaluate (for ``typing.get_type_hints``)."""
        out: dict[str, Any] = {}
        for key, value in annotations.items():
            if isinstance(value, str):
                if value not in self.cache:
                    # Our own annotations, evaluated as typing.get_type_hints would; the text
                    # stays when that fails (a name only imported under TYPE_CHECKING, say).
                    self.cache[value] = value
                    with contextlib.suppress(Exception):
                        self.cache[value] = eval(value, self.namespace)
                value = self.cache[value]
            out[key] = value
        return out


_evaluators: dict[str, _Evaluator] = {}


def _evaluator(fn: Callable[..., Any]) -> _Evaluator:
    module = getattr(fn, "__module__", None) or ""
    evaluator = _evaluators.get(module)
    if evaluator is None:
        evaluator = _evaluators[module] = _Evaluator(getattr(fn, "__globals__", {}))
    return evaluator


def _describe(
    method: Callable[..., Any], owner: type[Any], name: str, fn: Callable[..., Any]
) -> None:
    """Give ``method`` the name, docstring and signature of ``fn``, with a blocking return."""
    signature = inspect.signature(fn)
    annotations = dict(getattr(fn, "__annotations__", {}))
    returns = signature.return_annotation
    if isinstance(returns, str):
        returns = sync_annotation(returns)
        signature = signature.replace(return_annotation=returns)
        annotations["return"] = returns
    method.__name__ = name
    method.__qualname__ = f"{owner.__qualname__}.{name}"
    method.__module__ = owner.__module__
    method.__doc__ = fn.__doc__
    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__annotations__ = _evaluator(fn)(annotations)
    method.__wrapped__ = fn  # type: ignore[attr-defined]


def _iterating(fn: Callable[..., Any]) -> Callable[..., Any]:
    def iterate(self: SyncClient, /, *args: Any, **kwargs: Any) -> Any:
        portal, client = self._bound()
        return SyncIterator(portal, fn(client, *args, **kwargs))

    return iterate


def _calling(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: SyncClient, /, *args: Any, **kwargs: Any) -> Any:
        portal, client = self._bound()
        return to_sync(portal, portal.call(fn(client, *args, **kwargs)))

    return call


def _invoking(fn: Callable[..., Any]) -> Callable[..., Any]:
    def invoke(self: SyncClient, /, *args: Any, **kwargs: Any) -> Any:
        portal, client = self._bound()
        return to_sync(portal, portal.call(_invoke(fn, client, args, kwargs)))

    return invoke


def _deriving(fn: Callable[..., Any]) -> Callable[..., Any]:
    # Runs in the caller's thread: making a derived client does no I/O, so it costs no trip
    # through the loop and can be done per call site.
    def derive(self: SyncClient, /, *args: Any, **kwargs: Any) -> Any:
        client = fn(self._state.client, *args, **kwargs)
        return self._adopt(client, lambda parent: fn(parent, *args, **kwargs))

    return derive


# How each method twin of the rules table is built.
_METHOD_MAKERS: Final[dict[Twin, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    Twin.DERIVE: _deriving,
    Twin.ITERATE: _iterating,
    Twin.CALL: _calling,
    Twin.INVOKE: _invoking,
}


def _forwarded_property(name: str, prop: property) -> property:
    returns = (getattr(prop.fget, "__annotations__", {}) or {}).get("return")
    view = SYNC_NAMES.get(sync_annotation(returns)) if isinstance(returns, str) else None
    if view is not None and prop.fset is None:
        # A view of the async client with a blocking twin class (``with_raw_response``).
        def make_view(self: SyncClient) -> Any:
            return view(self)

        return property(make_view, None, None, prop.__doc__)

    def fget(self: SyncClient) -> Any:
        return getattr(self._state.client, name)

    def fset(self: SyncClient, value: Any) -> None:
        setattr(self._state.client, name, value)

    return property(
        fget if prop.fget is not None else None,
        fset if prop.fset is not None else None,
        None,
        prop.__doc__,
    )


def _derive(cls: type[SyncClient], async_cls: type[Any]) -> None:
    cls._async_class = async_cls

    def __init__(self: SyncClient, *args: Any, **kwargs: Any) -> None:
        self._setup(args, kwargs)

    _describe(__init__, cls, "__init__", async_cls.__init__)
    setattr(cls, "__init__", __init__)  # noqa: B010 - mypy rejects assigning a method

    for name, member, twin in wrapped_members(async_cls):
        if name in vars(cls):
            continue  # the subclass's own override
        if twin is Twin.PROPERTY:
            setattr(cls, name, _forwarded_property(name, member))
        elif twin in _METHOD_MAKERS:
            method = _METHOD_MAKERS[twin](member)
            _describe(method, cls, name, member)
            if twin is Twin.DERIVE:  # it returns the blocking class, not the async one
                method.__signature__ = inspect.signature(method).replace(  # type: ignore[attr-defined]
                    return_annotation=cls.__name__
                )
                method.__annotations__["return"] = cls
            setattr(cls, name, method)
        elif twin is Twin.CONSTANT:
            setattr(cls, name, member)
        # REPLACED and OMITTED: nothing to add
