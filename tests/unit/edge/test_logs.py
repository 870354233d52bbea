"""JSON log lines: one object per line, the request id, extras, and no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from gateway.core.secret import Secret
from gateway.edge import context
from gateway.edge.logs import (
    REDACTED,
    AccessLog,
    JsonFormatter,
    JsonLinesHandler,
    configure_logging,
    redact,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Route the root logger to a string buffer as JSON; restore the handlers after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(level="DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    """Parse every line written so far as JSON."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_one_json_object_per_line(stream: io.StringIO) -> None:
    """A record becomes one JSON line with ts, level, logger, message and request_id."""
    logging.getLogger("gateway.test").info("hello %s", "world")
    [line] = lines(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == "gateway.test"
    assert line["message"] == "hello world"
    assert line["request_id"] is None
    assert str(line["ts"]).endswith("+00:00")


def test_request_id_comes_from_the_context(stream: io.StringIO) -> None:
    """Inside a call the line carries the call's request id."""
    token = context.request_id.set("rid-7")
    try:
        logging.getLogger("gateway.test").info("inside")
    finally:
        context.request_id.reset(token)
    assert lines(stream)[0]["request_id"] == "rid-7"


def test_extras_become_keys(stream: io.StringIO) -> None:
    """Extra fields are top-level keys, numbers kept as numbers."""
    logging.getLogger("gateway.test").info(
        "rpc", extra={"rpc_method": "/x/Y", "duration_ms": 1.5, "status": "OK"}
    )
    line = lines(stream)[0]
    assert (line["rpc_method"], line["duration_ms"], line["status"]) == ("/x/Y", 1.5, "OK")


@pytest.mark.parametrize(
    "key", ["access_token", "refresh_token", "client_secret", "code", "state", "authorization"]
)
def test_secret_named_extras_are_redacted(stream: io.StringIO, key: str) -> None:
    """An extra whose name says it is a secret is never written."""
    logging.getLogger("gateway.test").info("oops", extra={key: "s3cr3t-value"})
    assert lines(stream)[0][key] == REDACTED
    assert "s3cr3t-value" not in stream.getvalue()


def test_secret_values_stay_masked(stream: io.StringIO) -> None:
    """A Secret logged by accident shows only its mask."""
    logging.getLogger("gateway.test").info(
        "got %s", Secret("tok-abcdef"), extra={"t": Secret("x1")}
    )
    assert "tok-abcdef" not in stream.getvalue()
    assert "x1" not in stream.getvalue()


def test_traceback_is_included_and_redacted(stream: io.StringIO) -> None:
    """Exceptions are logged with their traceback, credentials in it masked."""
    try:
        raise RuntimeError("call failed: Authorization: Bearer abc.def.ghi")
    except RuntimeError:
        logging.getLogger("gateway.test").exception("failed")
    line = lines(stream)[0]
    assert "RuntimeError" in str(line["exc"])
    assert "abc.def.ghi" not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("redirect?code=abc123&state=st-9", "abc123"),
        ("redirect?code=abc123&state=st-9", "st-9"),
        ('{"access_token": "at-1", "x": 1}', "at-1"),
        ("{'refresh_token': 'rt-1'}", "rt-1"),
        ("client_secret=cs-1 rest", "cs-1"),
    ],
)
def test_redact_masks_credentials_in_text(text: str, leak: str) -> None:
    """Bearer/basic credentials and token-like fields are masked in free text."""
    assert leak not in redact(text)
    assert REDACTED in redact(text)


def test_ordinary_text_is_untouched() -> None:
    """Text without credentials passes through as is."""
    text = "rpc /vehiclegateway.v1.VehicleGateway/Lock UNAVAILABLE status code 14"
    assert redact(text) == text


def test_formatter_works_standalone() -> None:
    """The formatter can be attached to any handler."""
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "msg", None, None)
    assert json.loads(JsonFormatter().format(record))["level"] == "WARNING"


@contextlib.contextmanager
def alone() -> Iterator[JsonLinesHandler]:
    """Leave the installed handler root's only one (pytest adds its capturing handlers to
    every test's phases), as in the running service."""
    root = logging.getLogger()
    saved = list(root.handlers)
    [installed] = [h for h in saved if isinstance(h, JsonLinesHandler)]
    root.handlers[:] = [installed]
    try:
        yield installed
    finally:
        root.handlers[:] = saved


ACCESS_CASES = [
    ("/vehiclegateway.v1.VehicleGateway/GetTelemetry", "OK", "rental", 0.0123456, "rid-1"),
    (
        "/grpc.health.v1.Health/Check",
        "NOT_FOUND",
        None,
        2.5,
        "0f1e2d3c-4b5a-4697-8887-766554433221",
    ),
    ("/x/Y", "INTERNAL", 'caller "quoted" é', 1e-7, "req:with.odd_chars-1"),
    ("/x/Y", "OK", "token=abc", 0.5, None),
]


@pytest.mark.parametrize(("method", "status", "who", "seconds", "rid"), ACCESS_CASES)
def test_the_access_line_is_what_the_formatter_writes(
    stream: io.StringIO, method: str, status: str, who: str | None, seconds: float, rid: str | None
) -> None:
    """Through the installed handler the access line is built from pre-encoded pieces; it
    equals, key for key and value for value, the line the formatter writes for the same
    call logged the usual way (the timestamp aside)."""
    logger = logging.getLogger("gateway.test.access")
    with alone() as installed:
        AccessLog(logger).write(
            level=logging.INFO,
            method=method,
            status=status,
            caller=who,
            elapsed_s=seconds,
            request_id=rid,
        )
        installed.flush()
    token = context.request_id.set(rid)
    try:
        logger.info(
            "rpc %s %s",
            method,
            status,
            extra={
                "rpc_method": method,
                "status": status,
                "caller": who,
                "duration_ms": round(seconds * 1000, 3),
            },
        )
    finally:
        context.request_id.reset(token)
    fast, usual = stream.getvalue().splitlines()
    fast_line, usual_line = json.loads(fast), json.loads(usual)
    assert list(fast_line) == list(usual_line)
    assert {k: v for k, v in fast_line.items() if k != "ts"} == {
        k: v for k, v in usual_line.items() if k != "ts"
    }
    assert str(fast_line["ts"]).endswith("+00:00")
    assert abs(
        datetime.fromisoformat(str(fast_line["ts"])) - datetime.fromisoformat(str(usual_line["ts"]))
    ) < timedelta(seconds=5)


async def test_access_lines_are_written_together_at_the_end_of_the_loop_turn(
    stream: io.StringIO,
) -> None:
    """Lines queued in one turn of the event loop reach the stream together after it; a
    record logged the usual way first writes what is queued, so the order holds."""
    access = AccessLog(logging.getLogger("gateway.test.access"))

    def write(rid: str) -> None:
        access.write(
            level=logging.INFO,
            method="/x/Y",
            status="OK",
            caller=None,
            elapsed_s=0.001,
            request_id=rid,
        )

    before = len(lines(stream))  # the loop's start may have logged (asyncio, at DEBUG)
    with alone():
        for n in range(3):
            write(f"rid-{n}")
        assert len(lines(stream)) == before
        logging.getLogger("gateway.test").warning("between")
        write("rid-3")
        assert len(lines(stream)) == before + 4
        await asyncio.sleep(0)
    order = [line.get("request_id") or line["message"] for line in lines(stream)[before:]]
    assert order == ["rid-0", "rid-1", "rid-2", "between", "rid-3"]


def test_under_other_handlers_the_access_line_is_an_ordinary_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where the installed handler is not root's only one (here pytest's capture), the
    line is logged as a record, with its extras, so those handlers see what they did."""
    with caplog.at_level(logging.INFO):
        AccessLog(logging.getLogger("gateway.test.access")).write(
            level=logging.INFO,
            method="/x/Y",
            status="OK",
            caller="billing",
            elapsed_s=0.25,
            request_id="rid-9",
        )
    [record] = caplog.records
    assert record.getMessage() == "rpc /x/Y OK"
    assert record.__dict__["caller"] == "billing"
    assert record.__dict__["duration_ms"] == 250.0


def test_the_access_line_respects_the_level(stream: io.StringIO) -> None:
    """A level the logger does not take writes nothing."""
    logger = logging.getLogger("gateway.test.quiet")
    logger.setLevel(logging.INFO)
    try:
        AccessLog(logger).write(
            level=logging.DEBUG,
            method="/x/Y",
            status="OK",
            caller=None,
            elapsed_s=0.1,
            request_id=None,
        )
        logging.getLogger().handlers[0].flush()
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
