"""Answering one Messages request down its chain of links, streaming or not.

The rules: a link that fails before its answer starts hands over to the next one, so the client
never sees the failure; once the answer is streaming, a failure ends the stream with an SSE
`error` event (never a hang, never half a message without an error). While an upstream is
silent, `ping` events keep Claude Code's idle timer from firing. Whatever happens, the request
gets exactly one log row, written after the answer ends.

An answer from a link that is not Anthropic, to a request that offers tools, is checked before
the client sees any of it (proxy/checks.py): a broken one is a failure like any other, and the
next link answers. A stream is then held until it is whole and checked — pings keep the client
waiting — and sent at once (`proxy.checkAnswers`: "stream" lets streams flow unchecked). Other
requests take the plain path, with nothing parsed or held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config.pricing import baseline_cost, request_cost
from ..config.schema import RouterConfig
from ..core.outcomes import (
    ERROR_CONTEXT_TRUNCATED,
    OUTCOME_CANCELLED,
    OUTCOME_ERROR,
    OUTCOME_FALLBACK,
    OUTCOME_OK,
    SOURCE_PROXY,
)
from ..core.routing import Decision
from ..core.signals import Signals
from ..core.usage import Usage
from ..log.rows import DecisionRow, decision_row
from ..providers.errors import BackendError, ErrorAnswer, TimedOut, Unreachable
from ..providers.link import Link
from .checks import Answer, AnswerCollector, FailedCheck, RequestChecks, answer_of_message
from .errors import PING_EVENT, error_body, error_event, error_type_for, request_id
from .http1 import HttpClient
from .upstream import Call, Observer, Opened, open_link

# Headers of an upstream's last-word error that tell the client when (and whether) to retry.
_FORWARDED_ERROR_HEADERS = (
    "retry-after",
    "x-should-retry",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
)
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass
class Exchange:
    """One request's journey: what was decided, tried and answered — and its log row."""

    call: Call
    signals: Signals
    decision: Decision
    links: list[Link]
    config: RouterConfig
    protocol_for: Callable[[Link], Any]
    client: HttpClient
    write_row: Callable[[Callable[[], DecisionRow]], None]
    prompt_id: str | None = None
    skipped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    rid: str = field(default_factory=request_id)
    failures: list[tuple[str, BackendError]] = field(default_factory=list)  # (link label, why)
    answered_by: Link | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_ms: float | None = None
    outcome: str = OUTCOME_ERROR
    error_class: str | None = None
    stop_chain: bool = False  # a failure no other link would fix (the client's own mistake)
    on_failure: Callable[[Link, BackendError], None] | None = None
    on_response: Callable[[Link, Opened], None] | None = None
    answer_checked: bool = False  # the answer the client got passed the checks
    _checks: RequestChecks | None = field(default=None, init=False, repr=False)

    def checks_for(self, link: Link) -> RequestChecks | None:
        """The checks `link`'s answer must pass, or None: Anthropic's answers, answers to
        requests without tools and (per `proxy.checkAnswers`) streams or everything go
        unchecked. The request's side is read once, for the first link that needs it."""
        if link.is_anthropic or not self.call.body.get("tools"):
            return None
        setting = self.config.proxy.check_answers
        if setting == "off" or (setting == "stream" and self.call.stream):
            return None
        if self._checks is None:
            self._checks = RequestChecks(self.call.body)
        return self._checks

    def passes(self, link: Link, answer: Answer, checks: RequestChecks) -> bool:
        """Whether `link`'s whole answer passes `checks`; a failure is recorded as the link's,
        so the chain moves on."""
        failed = checks.verdict(answer, link)
        if failed is not None:
            self.failures.append((link.label, failed))
            return False
        self.answer_checked = True
        return True

    async def open(self, link: Link, observe: Observer | None = None) -> Opened | None:
        """Open `link`, waiting out one short Retry-After; None (failure recorded) if it fails.
        `observe` is told a stream's events as they pass (the checks' collector)."""
        protocol = await self.protocol_for(link)
        for attempt in range(2):
            try:
                opened = await open_link(self.client, link, self.call, protocol, observe)
            except BackendError as failure:
                limit = self.config.proxy.max_retry_after_seconds
                if (
                    attempt == 0
                    and failure.status == 429
                    and failure.retry_after is not None
                    and failure.retry_after <= limit
                ):
                    await asyncio.sleep(failure.retry_after)
                    continue
                self.failures.append((link.label, failure))
                self.stop_chain = self.stop_chain or not failure.retriable
                if self.on_failure is not None:
                    self.on_failure(link, failure)
                return None
            if self.on_response is not None:
                self.on_response(link, opened)
            return opened
        return None  # pragma: no cover - the loop always returns

    def final_error(self) -> tuple[int, bytes, dict[str, str]]:
        """What the client gets when no link answered: the last word of the chain (with the
        headers that tell a client when to retry, as Anthropic sent them)."""
        last = self.failures[-1][1] if self.failures else None
        if last is not None and last.client_error is not None and last.client_error[1]:
            # Anthropic's own body, or an upstream error in its shape
            status, body = last.client_error
            kept = {k: v for k, v in last.headers.items() if k.lower() in _FORWARDED_ERROR_HEADERS}
            return status, body, kept
        tried = "; ".join(f"{label}: {f}" for label, f in self.failures)
        tried = tried or "no link could take the request"
        skipped = f" (skipped: {'; '.join(self.skipped)})" if self.skipped else ""
        unanswered = any(isinstance(f, (Unreachable, TimedOut)) for _, f in self.failures)
        status = 529 if unanswered else 502
        # A link whose answer failed a check did answer: what is missing is a usable answer.
        checked = any(isinstance(f, FailedCheck) for _, f in self.failures)
        missing = "no usable answer" if checked else "no upstream answered"
        return (
            status,
            error_body(status, f"hybrid-router: {missing}: {tried}{skipped}", self.rid),
            {},
        )

    def log(self) -> None:
        """Submit the request's one row. Called once, after the answer ended (or failed).

        What the row needs is taken now (not the request body: it need not outlive the
        answer); pricing the usage, hashing the prompt and building the row happen on the
        log writer's thread."""
        latency_ms = (time.perf_counter() - self.started) * 1000
        link = self.answered_by
        provider = link.provider_name if link else self.decision.provider
        model = link.model if link else self.decision.model
        fallback_from = None
        if link is not None and (link.provider_name, link.model) != (
            self.decision.provider,
            self.decision.model,
        ):
            # answered by another link than the routed one (tried and failed, or skipped)
            fallback_from = self.decision.provider
        outcome = self.outcome
        if outcome == OUTCOME_OK and fallback_from:
            outcome = OUTCOME_FALLBACK
        # The first answer that failed a check is the one the row names (the others are in the
        # reason): its check, and the provider and model that gave it. The check stays the error
        # class even when the answer that replaced it broke off (the outcome says so), so that a
        # row naming a failed model always names its check.
        failed = next((f for _, f in self.failures if isinstance(f, FailedCheck)), None)
        error_class = (
            (failed.error_class if failed is not None else None)
            or self.error_class
            or (self.failures[-1][1].error_class if self.failures and link is None else None)
        )
        usage = self.usage
        if (
            error_class is None
            and link is not None
            and not link.is_anthropic
            and 0 < usage.input_tokens * 2 < self.signals.estimated_tokens
        ):
            # The server read fewer than half the tokens the router counted: it ran with a
            # smaller window than the request and dropped the oldest part (an OpenAI-style
            # server cannot be told the window). Not the `truncated` outcome, which is an answer
            # cut at max_tokens.
            error_class = ERROR_CONTEXT_TRUNCATED
        reason = self.decision.reason
        if (link is None or fallback_from) and (self.skipped or self.failures):
            passed = [f"skipped {text}" for text in self.skipped] + [
                f"failed {label}: {failure}" for label, failure in self.failures
            ]
            reason = f"{reason}; {'; '.join(passed)}"
        decision, signals, config, priced = (
            self.decision,
            self.signals,
            self.config,
            link is not None,
        )
        prompt_id, ttft_ms = self.prompt_id, self.ttft_ms
        failed_provider = failed.provider if failed is not None else None
        failed_model = failed.model if failed is not None else None
        answer_checked = self.answer_checked and link is not None

        def row() -> DecisionRow:
            return decision_row(
                decision,
                signals,
                source=SOURCE_PROXY,
                store_prompts=config.store_prompts,
                outcome=outcome,
                provider=provider,
                model=model,
                usage=usage,
                cost=request_cost(provider, model, usage, config) if priced else 0.0,
                baseline_cost=baseline_cost(signals.requested_model, usage, config)
                if priced
                else 0.0,
                prompt_id=prompt_id,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                error_class=error_class,
                fallback_from=fallback_from,
                reason=reason,
                failed_provider=failed_provider,
                failed_model=failed_model,
                answer_checked=answer_checked,
            )

        self.write_row(row)


async def answer_once(exchange: Exchange) -> tuple[int, dict[str, str], bytes]:
    """A non-streaming request: the first link that answers, or the chain's last word. The
    caller logs the exchange once the answer is sent."""
    for link in exchange.links:
        opened = await exchange.open(link)
        if opened is None:
            if exchange.stop_chain:
                break
            continue
        checks = exchange.checks_for(link)
        if checks is not None:
            answer = answer_of_message(opened.message, opened.problems)
            if not exchange.passes(link, answer, checks):
                continue  # the next link answers: the client never sees this one
        exchange.answered_by = link
        exchange.usage = opened.usage
        exchange.ttft_ms = (time.perf_counter() - exchange.started) * 1000
        exchange.outcome = OUTCOME_OK
        return opened.status, opened.headers, opened.body or b""
    status, body, headers = exchange.final_error()
    return status, {**headers, "content-type": "application/json"}, body


class StreamRelay:
    """The ASGI response for a streaming request (see the module docstring).

    Built on plain asyncio, not task groups: on the hot path, one extra task per request (the
    hang-up watcher) and one timer (for pings) is all the machinery a stream needs.
    """

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.ping_interval = exchange.config.proxy.ping_interval_seconds
        self.grace = exchange.config.proxy.first_byte_grace_seconds
        self._send: Any = None
        self.response_started = False
        self.content_sent = False
        self.finished = False
        self.hung_up = False
        self._last_sent = 0.0
        self._silence_timer: asyncio.TimerHandle | None = None
        self._ping_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._send = send
        loop = asyncio.get_running_loop()
        answering = asyncio.current_task()
        assert answering is not None
        watcher = loop.create_task(self._watch_for_hang_up(receive, answering))
        self._last_sent = loop.time()
        self._arm(self.grace)
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self.hung_up:
                raise  # the server is shutting down: not ours to swallow
            answering.uncancel()
        except OSError:
            self._client_gone()
        finally:
            self.finished = True
            self._disarm()
            watcher.cancel()
            self.exchange.log()

    async def _watch_for_hang_up(self, receive: Any, answering: asyncio.Task[Any]) -> None:
        # The server's send() stays silent once the client has gone: only receive() says so.
        # Then the upstream must stop too (no tokens wasted).
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.finished:  # after the last byte, a disconnect is just the end
            self.hung_up = True
            self._client_gone()
            answering.cancel()

    def _client_gone(self) -> None:
        self.exchange.outcome, self.exchange.error_class = OUTCOME_CANCELLED, "client-closed"

    # -- pings: a timer checks for silence; nothing runs per relayed event ----------------------

    def _arm(self, delay: float) -> None:
        self._silence_timer = asyncio.get_running_loop().call_later(delay, self._on_silence)

    def _disarm(self) -> None:
        if self._silence_timer is not None:
            self._silence_timer.cancel()
            self._silence_timer = None
        if self._ping_task is not None:
            self._ping_task.cancel()

    def _on_silence(self) -> None:
        self._silence_timer = None
        if self.finished:
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_sent
        limit = self.ping_interval if self.response_started else self.grace
        if quiet + 0.001 < limit:  # something went out since the timer was set
            self._arm(limit - quiet)
            return
        self._ping_task = loop.create_task(self._ping())

    async def _ping(self) -> None:
        """Commit to 200 (if not yet) and ping: keeps Claude Code's idle timer from firing."""
        if self.finished:
            return
        await self._start()
        await self._body(PING_EVENT)
        self._arm(self.ping_interval)

    # -- sending ---------------------------------------------------------------------------------

    async def _start(
        self, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        if not self.response_started:
            self.response_started = True
            rid = [(b"request-id", self.exchange.rid.encode())]
            await self._send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": (headers if headers is not None else SSE_HEADERS) + rid,
                }
            )

    async def _body(self, data: bytes, more: bool = True) -> None:
        if self.finished:
            return
        if not more:
            self.finished = True
        self._last_sent = asyncio.get_running_loop().time()
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    # -- the chain -------------------------------------------------------------------------------

    async def _run(self) -> None:
        for link in self.exchange.links:
            checks = self.exchange.checks_for(link)
            collector = AnswerCollector() if checks is not None else None
            opened = await self.exchange.open(link, collector)
            if opened is None:
                if self.exchange.stop_chain:
                    break
                continue
            if checks is None or collector is None:
                if await self._relay(link, opened):
                    return
            elif await self._relay_checked(link, opened, checks, collector):
                return
        status, body, headers = self.exchange.final_error()
        if self.response_started:
            message = body.decode("utf-8", "replace")
            await self._body(error_event(message, error_type_for(status)), more=False)
        else:
            extra = [
                (k.lower().encode(), v.encode())
                for k, v in headers.items()
                if k.lower() != "request-id"
            ]
            await self._start(status, [(b"content-type", b"application/json"), *extra])
            await self._body(body, more=False)

    async def _relay(self, link: Link, opened: Opened) -> bool:
        """Relay the answer. False: it broke before any content, so the next link may try."""
        assert opened.events is not None
        exchange = self.exchange
        try:
            async for item in opened.events:
                if item.startswith(b"event: error"):
                    if not self.content_sent:  # nothing reached the client: the next link may try
                        exchange.failures.append((link.label, ErrorAnswer(f"{item[:300]!r}")))
                        return False
                    # The upstream's own error event goes out as it came: Claude Code reads its
                    # type.
                    exchange.answered_by, exchange.usage = link, opened.usage
                    exchange.outcome, exchange.error_class = OUTCOME_ERROR, "upstream-error"
                    await self._body(item, more=False)
                    return True
                if not self.content_sent and not item.startswith(b"event: ping"):
                    self.content_sent = True
                    exchange.ttft_ms = (time.perf_counter() - exchange.started) * 1000
                await self._start()
                await self._body(item)
        except BackendError as exc:
            if not self.content_sent:
                exchange.failures.append((link.label, exc))
                return False
            exchange.answered_by, exchange.usage = link, opened.usage
            exchange.outcome, exchange.error_class = OUTCOME_ERROR, "stream-broken"
            await self._body(
                error_event(f"hybrid-router: {link.label} stopped mid-answer: {exc}"), more=False
            )
            return True
        finally:
            await opened.aclose()
        exchange.answered_by, exchange.usage = link, opened.usage
        exchange.outcome = OUTCOME_OK
        await self._body(b"", more=False)
        return True

    async def _relay_checked(
        self, link: Link, opened: Opened, checks: RequestChecks, collector: AnswerCollector
    ) -> bool:
        """Hold the whole answer, check it, then send it. False: it failed (a check, or the
        stream broke) and nothing of it reached the client, so the next link may try.

        Nothing is sent while the answer is held; the silence timer's pings (every
        `proxy.pingIntervalSeconds`, after `firstByteGraceSeconds`) keep the client waiting,
        and the upstream's own pings are dropped."""
        assert opened.events is not None
        exchange = self.exchange
        held: list[bytes] = []
        try:
            async for item in opened.events:
                if item.startswith(b"event: ping"):
                    continue
                if item.startswith(b"event: error"):
                    exchange.failures.append((link.label, ErrorAnswer(f"{item[:300]!r}")))
                    return False
                held.append(item)
        except BackendError as exc:
            exchange.failures.append((link.label, exc))
            return False
        finally:
            await opened.aclose()
        if not exchange.passes(link, collector.answer(opened.problems), checks):
            return False
        self.content_sent = True
        exchange.ttft_ms = (time.perf_counter() - exchange.started) * 1000
        exchange.answered_by, exchange.usage = link, opened.usage
        exchange.outcome = OUTCOME_OK
        await self._start()
        await self._body(b"".join(held))
        await self._body(b"", more=False)
        return True
