"""The generated structure functions give exactly what cattrs' functions gave.

``codegen_async._structure_fn`` builds the models on the hot path; the converter built with
``generated=False`` keeps the cattrs functions alone (the previous path). Both structure the
same documents here, generated from the OpenAPI description, broken at one place, or holding
values only Python can send through ``from_dict`` (``True`` for an int, a ``str`` subclass, a
tuple, a key that is not a string): the outcome must be the same model (same types all the
way down, same unknown keys) or the same error (same exception type, same messages, hence
the same field path).
"""

from __future__ import annotations

import collections
import copy
import json
import pickle
from enum import Enum
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from codegen_async import _converter, models
from codegen_async._converter import ResponseShapeError, _make_converter, structure
from codegen_async.models import AgentRun, Page, RunStatus, SlackConnectToken, SourceType, User

from .fuzz_spec import bounded
from .test_fuzz_models import FUZZ, JSON_VALUES, TYPED, Case, mutations

GENERATED = _make_converter()
REFERENCE = _make_converter(generated=False)


class _Text(str):
    pass


class _Number(int):
    pass


# Values a caller of ``from_dict`` may pass that JSON never holds.
PYTHON_ONLY = st.sampled_from(
    [
        True,
        False,
        _Number(7),
        _Text("ACTIVE"),
        _Text("API"),
        (1, 2),
        ("a",),
        collections.OrderedDict(a=1),
        {1: "x"},
        {_Text("k"): 1},
        b"bytes",
        1.0,
        -0.0,
        RunStatus("COMPLETE"),
        SourceType.API,
        object(),
    ]
)
HOSTILE = JSON_VALUES | PYTHON_ONLY


def outcome(conv: cattrs.Converter, data: Any, type_: Any) -> tuple[Any, ...]:
    """What a converter's hook gives: ``("ok", model)`` or the error's type and messages."""
    try:
        return ("ok", conv.get_structure_hook(type_)(data, type_))
    except cattrs.BaseValidationError as exc:
        return ("error", type(exc), cattrs.transform_error(exc))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def assert_identical(fast: Any, slow: Any, raw: Any) -> None:
    """Same types and values all the way down; containers shared with the input alike."""
    assert type(fast) is type(slow)
    if isinstance(raw, (dict, list)):
        assert (fast is raw) == (slow is raw)
    if attrs.has(type(fast)):
        for field in attrs.fields(type(fast)):
            if field.name == "received_at":
                continue  # stamped on arrival
            wire = field.alias if field.name.startswith("_") else field.name
            sub = raw.get(wire) if isinstance(raw, dict) else None
            assert_identical(getattr(fast, field.name), getattr(slow, field.name), sub)
    elif isinstance(fast, RunStatus):
        assert fast == slow and fast.raw == slow.raw and type(fast.raw) is type(slow.raw)
    elif isinstance(fast, Enum):
        assert fast is slow or (fast.value == slow.value and not fast.is_known)
    elif isinstance(fast, list):
        assert len(fast) == len(slow)
        raws = raw if isinstance(raw, list) and len(raw) == len(fast) else [None] * len(fast)
        for a, b, r in zip(fast, slow, raws, strict=True):
            assert_identical(a, b, r)
    elif isinstance(fast, dict):
        assert fast == slow
        assert [type(k) for k in fast] == [type(k) for k in slow]
    else:
        assert fast == slow or (fast != fast and slow != slow)


def assert_same(data: Any, type_: Any) -> tuple[Any, ...]:
    fast, slow = outcome(GENERATED, data, type_), outcome(REFERENCE, data, type_)
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert_identical(fast[1], slow[1], data)
    else:
        assert fast[1:] == slow[1:]
    return fast


def _paths(value: Any, steps: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [steps]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*steps, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*steps, index))
    return found


def _replace(document: Any, steps: tuple[Any, ...], new: Any) -> Any:
    if not steps:
        return new
    copied = json.loads(json.dumps(document))
    parent = copied
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = new
    return copied


# --- the same outcome on every kind of document ------------------------------------------
@pytest.mark.parametrize("case", TYPED, ids=[c.id for c in TYPED])
def test_generated_and_cattrs_functions_agree(case: Case) -> None:
    """A valid answer, then the same answer changed at one place in one of three ways:
    broken against the schema, one value replaced by any JSON or Python-only value, or a
    key dropped or added."""

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        document = data.draw(from_schema(bounded(case.schema)), label="valid answer")
        assert assert_same(document, case.endpoint.response)[0] == "ok"
        change = data.draw(st.sampled_from(["break", "replace", "keys"]), label="change")
        if change == "break":
            mutation = data.draw(st.sampled_from(list(mutations(document, case.schema))))
            assert assert_same(mutation.apply(document), case.endpoint.response)[0] == "error"
            return
        if change == "replace":
            steps = data.draw(st.sampled_from(_paths(document)), label="where")
            new = data.draw(HOSTILE, label="value")
            assert_same(_replace(document, steps, new), case.endpoint.response)
            return
        objects = [p for p in _paths(document) if isinstance(_get(document, p), dict)]
        if not objects:
            return
        where = _get(document, data.draw(st.sampled_from(objects), label="object"))
        if where and data.draw(st.booleans(), label="drop"):
            del where[data.draw(st.sampled_from(sorted(where)), label="key")]
        else:
            where[data.draw(st.text(max_size=12), label="key")] = data.draw(JSON_VALUES)
        assert_same(document, case.endpoint.response)

    check()


def _get(document: Any, steps: tuple[Any, ...]) -> Any:
    for step in steps:
        document = document[step]
    return document


# --- the pieces the generated code takes inline ---------------------------------------------
RUN = {"id": 1, "organization_id": 2}


@pytest.mark.parametrize(
    "document",
    [
        RUN,
        {**RUN, "status": None, "source_type": None, "metadata": None},
        {**RUN, "new_field": 1},
        {**RUN, "status": "ACTIVE", "new_field": [1], "other": None},
        {"id": 1, "organization_id": 2, "web_url": "u", "zz": 1, "yy": 2},
        {**RUN, "metadata": {}, "github_pull_requests": []},
        {**RUN, "metadata": {"a": {"b": [1]}}, "source_type": "NEW_KIND"},
        {**RUN, "status": "brand-new", "source_type": "API", "web_url": None},
        {**RUN, "github_pull_requests": [{"id": 1, "created_at": "x", "extra": 1}]},
        {**RUN, "id": True},
        {**RUN, "id": "1"},
        {**RUN, "id": 1.0},
        {**RUN, "web_url": 12},
        {**RUN, "metadata": {1: 2}},
        {**RUN, "metadata": []},
        {**RUN, "metadata": "text"},
        {**RUN, "github_pull_requests": {}},
        {**RUN, "github_pull_requests": [{"id": "1", "created_at": "x"}]},
        {**RUN, "status": 3},
        {**RUN, "source_type": 3},
        {"organization_id": 2},
        [],
        None,
    ],
)
def test_known_corners_give_the_same_outcome(document: Any) -> None:
    assert_same(document, AgentRun)
    assert_same({"items": [document], "total": 1, "page": 1, "size": 1, "pages": 1}, Page[AgentRun])


def test_unknown_keys_are_counted_right_when_optional_keys_are_missing() -> None:
    # The generated code knows there is no unknown key by counting the missing ones.
    assert structure({**RUN, "zz": 1}, AgentRun).model_extra == {"zz": 1}
    assert structure(RUN, AgentRun).model_extra == {}
    user = {"id": 1, "github_user_id": "g", "github_username": "u", "is_admin": True, "x": 0}
    assert structure(user, User).model_extra == {"x": 0}
    assert structure(user, User)._is_admin is True
    # A key named like a field that is never read from the wire is an unknown key.
    token = {"token": "t", "message": "m", "expires_in_minutes": 10, "received_at": "r"}
    assert structure(token, SlackConnectToken).model_extra == {"received_at": "r"}
    assert_same(token, SlackConnectToken)


def test_the_path_names_the_field_in_a_page() -> None:
    page = {"items": [RUN, {**RUN, "id": "7"}], "total": 2, "page": 1, "size": 2, "pages": 1}
    with pytest.raises(ResponseShapeError) as info:
        structure(page, Page[AgentRun])
    assert info.value.path == "$.items[1].id"


def test_statuses_are_shared_and_bounded() -> None:
    first = structure({**RUN, "status": "ERROR"}, AgentRun).status
    again = structure({**RUN, "status": "ERROR"}, AgentRun).status
    assert first is again and first == "failed" and first.raw == "ERROR"
    for i in range(_converter._STATUSES_MAX + 50):
        status = structure({**RUN, "status": f"NEW_{i}"}, AgentRun).status
        assert status is not None and status.raw == f"NEW_{i}" and not status.is_known
    assert len(_converter._STATUSES) <= _converter._STATUSES_MAX


# --- what is built is an ordinary instance of the model --------------------------------------
def test_built_models_are_ordinary_frozen_instances() -> None:
    document = {**RUN, "status": "COMPLETE", "metadata": {"a": 1}, "zz": 2}
    run = structure(document, AgentRun)
    assert type(run) is AgentRun and run.__class__ is AgentRun
    assert run == AgentRun(1, 2, RunStatus("COMPLETE"), metadata={"a": 1}, model_extra={"zz": 2})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        run.id = 3  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del run.id  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(run)) == run
    assert copy.deepcopy(run) == run and copy.copy(run) == run
    assert attrs.evolve(run, id=5).id == 5
    assert run.metadata is not document["metadata"]  # copied, as cattrs did
    user = structure({"id": 1, "github_user_id": "g", "github_username": "u"}, User)
    assert hash(user) == hash(User(1, "g", "u"))
    assert repr(run).startswith("AgentRun(id=1, organization_id=2, status=RunStatus(")


def test_every_response_model_gets_a_generated_function() -> None:
    classes = [
        cls
        for cls in vars(models).values()
        if isinstance(cls, type) and attrs.has(cls) and cls.__module__ == models.__name__
    ]
    assert len(classes) >= 20
    for cls in classes:
        type_ = Page[AgentRun] if cls is Page else cls
        hook = GENERATED.get_structure_hook(type_)
        assert hook.__code__.co_filename.startswith("<structure "), cls


def test_a_subclass_outside_the_sdk_keeps_cattrs_and_its_own_init() -> None:
    seen: list[int] = []

    @attrs.frozen
    class MyRun(AgentRun):
        tag: str = "x"

        def __attrs_post_init__(self) -> None:
            seen.append(self.id)

    run = MyRun.from_dict({**RUN, "tag": "y", "zz": 1})
    assert type(run) is MyRun and run.tag == "y" and seen == [1]
    hook = GENERATED.get_structure_hook(MyRun)
    assert not hook.__code__.co_filename.startswith("<structure ")
