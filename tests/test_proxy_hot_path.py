"""The proxy's lean request path: a bug still answers in Anthropic's shape with its row, the log
writer's batches lose nothing (not even around a bad row), and events that arrive together are
relayed together without changing what the client reads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from fakes.fake_ollama import Reply
from test_proxy_support import (
    CLAUDE,
    CLIENT_KEY,
    CODE_PROMPT,
    CODER_MODEL,
    assert_anthropic_error,
    body,
    rig,
)

from hybrid_router.log.rows import DecisionRow
from hybrid_router.log.writer import LogWriter
from hybrid_router.proxy import messages as messages_module
from hybrid_router.proxy.upstream import Opened, _anthropic_events


def _row(**changes: Any) -> DecisionRow:
    fields: dict[str, Any] = {
        "source": "proxy",
        "rule": "default",
        "provider": "ollama",
        "model": "m",
        "outcome": "ok",
        "latency_ms": 1.0,
    }
    fields.update(changes)
    return DecisionRow(**fields)


def _rows(database: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(database)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.parametrize("stream", [False, True])
def test_a_bug_while_routing_answers_in_anthropics_shape_and_gets_a_row(
    router_home: Path, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    def broken_decide(*_: Any) -> Any:
        raise RuntimeError("a bug with a secret-looking detail sk-should-not-leak")

    monkeypatch.setattr(messages_module, "decide", broken_decide)
    with rig(router_home) as r:
        response = r.post(body(CODE_PROMPT, stream=stream))
        error = assert_anthropic_error(response, 500, "api_error")
        assert error["error"]["message"] == "hybrid-router internal error: RuntimeError"
        assert response.headers["request-id"].startswith("req_")
        [row] = r.rows(1)
        assert (row["outcome"], row["rule"], row["error_class"]) == (
            "error",
            "internal-error",
            "internal",
        )
        assert "sk-should-not-leak" not in str(row)
        # the proxy keeps serving once the bug is gone
        monkeypatch.undo()
        r.ollama.script(CODER_MODEL, Reply(text="fine again"))
        assert r.post(body(CODE_PROMPT)).status_code == 200


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[LogWriter]:
    log_writer = LogWriter(str(tmp_path / "log.db"))
    yield log_writer
    log_writer.close()


def test_rows_keep_the_time_they_were_submitted_and_a_flush_writes_them_all(
    writer: LogWriter,
) -> None:
    submitted = time.time()
    for index in range(300):
        writer.submit(_row(model=f"m{index}"))
    time.sleep(0.3)
    writer.flush()
    rows = _rows(Path(writer.database_path))
    assert [r["model"] for r in rows] == [f"m{i}" for i in range(300)]
    assert all(submitted - 1 <= r["ts"] <= submitted + 0.25 for r in rows)  # not the write time
    assert writer.written == 300


def test_a_row_the_database_refuses_loses_only_itself(writer: LogWriter) -> None:
    writer.submit(_row(model="before"))
    writer.submit(_row(provider=None))  # NOT NULL: the database refuses it
    writer.submit(lambda: _row(model=1 / 0))  # a row that cannot even be built
    writer.submit(_row(model="after"))
    writer.flush()
    assert [r["model"] for r in _rows(Path(writer.database_path))] == ["before", "after"]
    assert writer.written == 2


def test_closing_the_writer_writes_what_is_still_queued(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    writer = LogWriter(str(database))
    for index in range(50):
        writer.submit(_row(model=f"m{index}"))
    writer.close()  # no flush: shutdown must not lose the rows of answered requests
    assert len(_rows(database)) == 50


def test_rows_from_many_threads_all_land(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    writer = LogWriter(str(database))

    def submit_many(thread: int) -> None:
        for index in range(100):
            writer.submit(_row(model=f"t{thread}-{index}"))

    threads = [threading.Thread(target=submit_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert sorted(r["model"] for r in _rows(database)) == sorted(
        f"t{t}-{i}" for t in range(4) for i in range(100)
    )


class _OneRead:
    """A response whose whole body arrives in one network read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        yield self.data


def _sse(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def _batches(data: bytes) -> tuple[list[bytes], Opened]:
    answer = Opened(200, {})

    async def collect() -> list[bytes]:
        return [batch async for batch in _anthropic_events(_OneRead(data), answer)]  # type: ignore[arg-type]

    return asyncio.run(collect()), answer


def test_events_of_one_read_leave_together_but_pings_and_errors_alone() -> None:
    start = _sse("message_start", '{"type":"message_start","message":{"usage":{"input_tokens":5}}}')
    delta = _sse("content_block_delta", '{"type":"content_block_delta","delta":{"text":"hi"}}')
    ping = _sse("ping", '{"type":"ping"}')
    end = _sse(
        "message_delta",
        '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}',
    )
    stop = _sse("message_stop", '{"type":"message_stop"}')
    batches, answer = _batches(start + delta + ping + delta + end + stop)
    assert batches == [start + delta, ping, delta + end + stop]
    usage = answer.usage
    assert (usage.input_tokens, usage.output_tokens, answer.stop_reason) == (5, 3, "end_turn")

    error = _sse("error", '{"type":"error","error":{"type":"overloaded_error","message":"busy"}}')
    batches, _ = _batches(start + delta + error + delta)
    assert batches == [start + delta, error]  # nothing after an error event is relayed


def test_a_streamed_answer_reads_the_same_with_the_sdk(router_home: Path) -> None:
    """However the events are grouped on the wire, the SDK sees every event in order, with the
    text and usage intact."""
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.ollama.script(CODER_MODEL, Reply(text="one two three four five six", prompt_tokens=77))
        with client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
        ) as stream:
            kinds = [event.type for event in stream]
            message = stream.get_final_message()
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        assert (
            "".join(b.text for b in message.content if b.type == "text")
            == "one two three four five six"
        )
        assert message.usage.input_tokens == 77
        [row] = r.rows(1)
        assert (row["outcome"], row["input_tokens"]) == ("ok", 77)
