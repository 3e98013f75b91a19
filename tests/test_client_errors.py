"""Error mapping, retries, Retry-After, timeouts: the transport's decisions (aioresponses)."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from codegen_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncAgent,
    AuthenticationError,
    BadRequestError,
    CodegenError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RateLimits,
    UnprocessableEntityError,
)
from codegen_async._retry import (
    NO_ANSWER,
    NOT_SENT,
    backoff_delay,
    may_retry,
    parse_retry_after,
)
from codegen_async._transport import Transport

from .conftest import BASE, ORG, TOKEN

RUN_URL = f"{BASE}/v1/organizations/{ORG}/agent/run/7"
CREATE_URL = f"{BASE}/v1/organizations/{ORG}/agent/run"
RUN = {"id": 7, "organization_id": ORG, "status": "ACTIVE"}


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (400, {"message": "No logs available for analysis", "status_code": 400},
         BadRequestError, "No logs available for analysis"),
        (401, {"message": "Invalid token", "status_code": 401}, AuthenticationError,
         "Invalid token"),
        (402, {"message": "Alloted agent runs for the current billing plan have been reached.",
               "status_code": 402}, PaymentRequiredError, "billing plan"),
        (403, {"message": "You do not have access to this organization.", "status_code": 403},
         PermissionDeniedError, "You do not have access to this organization."),
        (404, {"message": "Agent run not found.", "status_code": 404}, NotFoundError,
         "Agent run not found."),
        (404, {"detail": "Sandbox not found"}, NotFoundError, "Sandbox not found"),
        (500, {"message": "boom"}, InternalServerError, "boom"),
        (409, {"message": "conflict"}, APIStatusError, "conflict"),
    ],
)  # fmt: skip
async def test_documented_statuses_become_typed_errors(
    agent: AsyncAgent, status: int, body: Any, cls: type[APIStatusError], message: str
) -> None:
    with aioresponses() as mock:
        mock.post(CREATE_URL, status=status, payload=body)
        with pytest.raises(cls) as info:
            await agent.run("do it")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, CodegenError)
    assert err.status_code == status
    assert message in err.message
    assert err.method == "POST"
    assert err.url == CREATE_URL
    assert str(status) in str(err) and "POST" in str(err) and message in str(err)
    assert TOKEN not in str(err) and TOKEN not in repr(err)


async def test_422_carries_validation_errors_as_data(agent: AsyncAgent) -> None:
    body = {
        "detail": [
            {"loc": ["query", "limit"], "msg": "Input should be <= 100", "type": "less_than_equal"}
        ]
    }
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/users/me", status=422, payload=body)
        with pytest.raises(UnprocessableEntityError) as info:
            await agent.get_current_user()
    (detail,) = info.value.errors
    assert detail.loc == ("query", "limit")
    assert detail.type == "less_than_equal"
    assert "query.limit: Input should be <= 100" in str(info.value)


async def test_429_carries_retry_after(agent: AsyncAgent) -> None:
    client = AsyncAgent(TOKEN, ORG, base_url=BASE, rate_limits=RateLimits.disabled(), max_retries=0)
    async with client:
        with aioresponses() as mock:
            mock.get(
                RUN_URL,
                status=429,
                payload={"message": "Rate limit exceeded. Please try again later.",
                         "status_code": 429},
                headers={"Retry-After": "17"},
            )  # fmt: skip
            with pytest.raises(RateLimitError) as info:
                await client.get_run(7)
    assert info.value.retry_after == 17
    assert "retry after 17s" in str(info.value)


async def test_html_error_page_still_gives_a_typed_error(
    agent: AsyncAgent, no_backoff: None
) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    with aioresponses() as mock:
        for _ in range(3):
            mock.get(RUN_URL, status=502, body=page, content_type="text/html")
        with pytest.raises(InternalServerError) as info:
            await agent.get_run(7)
    assert info.value.status_code == 502
    assert "HTML" in info.value.message
    assert info.value.body.startswith("<html>")


async def test_non_json_success_is_a_response_validation_error(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(RUN_URL, status=200, body="not json", content_type="text/plain")
        with pytest.raises(APIResponseValidationError, match="not JSON"):
            await agent.get_run(7)


async def test_wrong_shape_names_the_field(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(RUN_URL, payload={"id": "seven", "organization_id": ORG})
        with pytest.raises(APIResponseValidationError) as info:
            await agent.get_run(7)
    assert info.value.path == "$.id"
    assert "$.id" in str(info.value)


async def test_missing_required_field_names_it(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/users/me", payload={"id": 1, "github_user_id": "1"})
        with pytest.raises(APIResponseValidationError, match=r"\$\.github_username"):
            await agent.get_current_user()


# --- retries ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_idempotent_read_is_retried_then_succeeds(
    agent: AsyncAgent, no_backoff: None, status: int
) -> None:
    with aioresponses() as mock:
        mock.get(RUN_URL, status=status, payload={"message": "try again"})
        mock.get(RUN_URL, payload=RUN)
        run = await agent.get_run(7)
    assert run.id == 7
    assert agent.stats.retries == 1
    assert agent.stats.requests == 2


async def test_retries_stop_after_max_retries(agent: AsyncAgent, no_backoff: None) -> None:
    with aioresponses() as mock:
        for _ in range(5):
            mock.get(RUN_URL, status=503, payload={"message": "down"})
        with pytest.raises(InternalServerError):
            await agent.get_run(7)
    assert agent.stats.requests == 3  # the first attempt and max_retries=2


async def test_max_retries_zero_disables_retries(no_backoff: None) -> None:
    async with AsyncAgent(
        TOKEN, ORG, base_url=BASE, rate_limits=RateLimits.disabled(), max_retries=0
    ) as client:
        with aioresponses() as mock:
            mock.get(RUN_URL, status=503, payload={"message": "down"})
            mock.get(RUN_URL, payload=RUN)
            with pytest.raises(InternalServerError):
                await client.get_run(7)
        assert client.stats.requests == 1


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_creating_call_is_not_retried_after_the_server_may_have_acted(
    agent: AsyncAgent, no_backoff: None, status: int
) -> None:
    with aioresponses() as mock:
        mock.post(CREATE_URL, status=status, payload={"message": "oops"})
        mock.post(CREATE_URL, payload=RUN)
        with pytest.raises(APIStatusError) as info:
            await agent.run("do it")
    assert info.value.status_code == status
    assert agent.stats.requests == 1


async def test_creating_call_is_retried_after_429(agent: AsyncAgent, no_backoff: None) -> None:
    with aioresponses() as mock:
        mock.post(CREATE_URL, status=429, payload={"message": "slow down"})
        mock.post(CREATE_URL, payload=RUN)
        run = await agent.run("do it")
    assert run.id == 7
    assert agent.stats.requests == 2
    assert agent.stats.rate_limited == 1


async def test_creating_call_is_retried_when_no_connection_was_made(
    agent: AsyncAgent, no_backoff: None
) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("api.example.test", 443, True, True, None, None, None),
        ConnectionRefusedError(111, "Connection refused"),
    )
    with aioresponses() as mock:
        mock.post(CREATE_URL, exception=refused)
        mock.post(CREATE_URL, payload=RUN)
        run = await agent.run("do it")
    assert run.id == 7
    assert agent.stats.requests == 2


async def test_creating_call_is_not_retried_after_a_disconnect(
    agent: AsyncAgent, no_backoff: None
) -> None:
    with aioresponses() as mock:
        mock.post(CREATE_URL, exception=aiohttp.ServerDisconnectedError())
        mock.post(CREATE_URL, payload=RUN)
        with pytest.raises(APIConnectionError):
            await agent.run("do it")
    assert agent.stats.requests == 1


async def test_read_is_retried_after_a_disconnect(agent: AsyncAgent, no_backoff: None) -> None:
    with aioresponses() as mock:
        mock.get(RUN_URL, exception=aiohttp.ServerDisconnectedError())
        mock.get(RUN_URL, payload=RUN)
        assert (await agent.get_run(7)).id == 7


async def test_timeout_is_a_typed_error_and_a_timeout_error(
    agent: AsyncAgent, no_backoff: None
) -> None:
    with aioresponses() as mock:
        for _ in range(3):
            mock.get(RUN_URL, exception=asyncio.TimeoutError())
        with pytest.raises(APITimeoutError) as info:
            await agent.get_run(7, timeout=0.5)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, APIConnectionError)


async def test_per_call_timeout_reaches_aiohttp(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(RUN_URL, payload=RUN)
        await agent.get_run(7, timeout=2.5)
        (sent,) = next(iter(mock.requests.values()))
    assert sent.kwargs["timeout"].total == 2.5


async def test_retry_after_is_honoured_before_the_retry(
    agent: AsyncAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_pause(_transport: Transport, delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(Transport, "_pause", fake_pause)
    with aioresponses() as mock:
        mock.get(RUN_URL, status=503, payload={"message": "busy"}, headers={"Retry-After": "3"})
        mock.get(RUN_URL, payload=RUN)
        await agent.get_run(7)
    assert len(slept) == 1 and 3.0 <= slept[0] <= 3.5


# --- pure retry decisions ---------------------------------------------------------------
def test_parse_retry_after_seconds_date_and_garbage() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12
    assert parse_retry_after({"Retry-After": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "-4"}) == 0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "99999"}) == 300  # capped
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    when = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": when}, now=now.timestamp()) == pytest.approx(30)


def test_backoff_is_exponential_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(8):
        ceiling = min(8.0, 0.5 * 2**attempt)
        samples = [backoff_delay(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # full jitter spreads over the whole range
    assert 5.0 <= backoff_delay(3, retry_after=5.0, rng=rng) <= 5.25


def test_retry_policy() -> None:
    def retry(outcome: int, idempotent: bool, attempt: int = 0) -> bool:
        return may_retry(outcome, idempotent=idempotent, attempt=attempt, max_retries=2)

    # The server cannot have acted: anything may be repeated.
    assert retry(429, idempotent=False)
    assert retry(NOT_SENT, idempotent=False)
    # It may have acted: only what is safe to repeat.
    assert not retry(503, idempotent=False)
    assert not retry(NO_ANSWER, idempotent=False)
    assert retry(503, idempotent=True)
    assert retry(NO_ANSWER, idempotent=True)
    assert retry(408, idempotent=True)
    # Never for an answer that repeating cannot change, nor past the allowed retries.
    assert not retry(404, idempotent=True)
    assert not retry(400, idempotent=True)
    assert not retry(501, idempotent=True)
    assert not retry(429, idempotent=True, attempt=2)
    assert not retry(NOT_SENT, idempotent=True, attempt=2)
