"""JSON log lines: one object per line, the request id, extras, and no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.core.secret import Secret
from gateway.edge import context
from gateway.edge.logs import REDACTED, JsonFormatter, configure_logging, redact


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
