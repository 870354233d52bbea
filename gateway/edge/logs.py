"""Structured logging: one JSON object per line, stamped with the request id, secrets redacted.

    configure_logging(level="INFO")                 # once, in the composition root
    _log.info("rpc", extra={"rpc_method": …})       # extras become top-level JSON keys

Each line has `ts` (UTC, ISO 8601), `level`, `logger`, `message`, `request_id` (from
`gateway.edge.context.request_id`, None outside a call), the record's extra fields, and `exc`
with the traceback when there is one. The first defence against leaking secrets is not
logging them (request and response messages are never logged; tokens are `Secret`s whose
repr is masked); `redact` is the second: it masks bearer/basic credentials, token-like
query or JSON fields, and every extra whose key names a secret.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway.edge import context

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(?:^|_)(?:token|secret|password|passwd|authorization|cookie|code|state|api_key|key)$",
    re.IGNORECASE,
)
"""Extra field names whose values are never written (`access_token`, `code`, `state`…)."""

_SECRET_TEXT = (
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"\b(access_token|refresh_token|id_token|client_secret)(\s*[=:]\s*)(\"?)[^\s&\"',;]+",
            re.IGNORECASE,
        ),
        rf"\1\2\3{REDACTED}",
    ),
    (re.compile(r"\b(code|state|token)=[^\s&\"',;]+", re.IGNORECASE), rf"\1={REDACTED}"),
    (
        re.compile(
            r"([\"'](?:access_token|refresh_token|id_token|client_secret|code|state|token)[\"']"
            r"\s*:\s*[\"'])[^\"']*",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
)
"""Text patterns masked in messages and tracebacks."""

_MAY_HOLD_SECRET = re.compile(r"bearer|basic|token|secret|code|state", re.IGNORECASE)
"""A word every pattern above needs: text without one has nothing to mask, and is passed
after one scan instead of four substitutions (most log text, e.g. every access line)."""

_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str) -> str:
    """Mask credentials and token-like fields in free text."""
    if not _MAY_HOLD_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON: standard keys, the request id, extras, traceback."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or context.request_id.get(),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES or key == "request_id":
                continue
            payload[key] = REDACTED if _names_secret(key) else _jsonable(value)
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str, ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def _names_secret(key: str) -> bool:
    """True when an extra field's name says it holds a secret (decided once per name)."""
    return _SECRET_KEY.search(key) is not None


def _jsonable(value: object) -> object:
    """Return a value JSON can hold as is, or its redacted string form."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return [redact(v) if isinstance(v, str) else v for v in value]
    return redact(str(value))


QUIET_LOGGERS = ("alembic.runtime.plugins",)
"""Libraries' loggers whose INFO lines say nothing an operator acts on (alembic announces
each plugin it loads); their warnings still show."""


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler `configure_logging` installs: JSON lines, and a queue of lines
    already formatted (the access log's, `AccessLog`) written together once per turn of
    the event loop, one write for many calls instead of one each.

    A record logged the usual way writes the queued lines first, so lines leave in the
    order they were made; `flush` (also run by `logging.shutdown` at exit) writes them too.
    Lines queued in the turn a process is killed in are lost with it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._queued: list[str] = []
        self._flush_due = False
        """A flush is asked for and has not begun."""

    def queue(self, line: str) -> None:
        """Write `line` (JSON and a newline) at the end of this turn of the running event
        loop, or now when no loop runs in this thread."""
        self._queued.append(line)  # atomic: no lock on the way of every call
        if self._flush_due:
            return
        self._flush_due = True
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        """Write the queued lines, then `record`."""
        if self._queued:
            self.flush()
        super().emit(record)

    def flush(self) -> None:
        """Write the queued lines and flush the stream."""
        # The handler's own lock, which `handle` holds around `emit`: queued lines and
        # records written from other threads never interleave.
        self.acquire()
        try:
            # Cleared before the lines are counted: a line queued after the count finds it
            # cleared and asks for a flush of its own.
            self._flush_due = False
            queued = self._queued
            if queued:
                count = len(queued)
                text = "".join(queued[:count])
                del queued[:count]
                try:
                    self.stream.write(text)
                except Exception:  # noqa: BLE001 - as logging does: a log write never raises
                    self.handleError(logging.makeLogRecord({"msg": "access log lines"}))
        finally:
            self.release()
        super().flush()


class AccessLog:
    """The per-call log line of the gRPC edge, made cheaply.

    Through the handler `configure_logging` installs (the service's own set-up) the line is
    built from pieces encoded once per method and status and queued on that handler
    (`JsonLinesHandler.queue`): the same JSON `JsonFormatter` writes for the record
    `_log.log(level, "rpc %s %s", method, status, extra=…)` would, key for key, without a
    `LogRecord` or `json.dumps` per call. Under any other set-up (tests capturing logs, an
    embedding application's handlers, a filter on the way) it logs that record the usual
    way, so what those handlers see does not change."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        chain = []
        node: logging.Logger | None = logger
        while node is not None and node is not logging.root:
            chain.append(node)
            node = node.parent if node.propagate else None
        self._chain = tuple(chain)
        self._pieces: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._callers: dict[str | None, str] = {}
        self._second = -1
        self._second_text = ""

    def write(
        self,
        *,
        level: int,
        method: str,
        status: str,
        caller: str | None,
        elapsed_s: float,
        request_id: str | None,
    ) -> None:
        """Log one call's line: method, status, caller, duration, request id."""
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        handler = _fast_handler(level)
        if handler is None or any(node.handlers or node.filters for node in self._chain):
            logger.log(
                level,
                "rpc %s %s",
                method,
                status,
                extra={
                    "rpc_method": method,
                    "status": status,
                    "caller": caller,
                    "duration_ms": round(elapsed_s * 1000, 3),
                },
            )
            return
        head, tail = self._pieces.get((method, status, level)) or self._encode(
            method, status, level
        )
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        handler.queue(
            f'{{"ts": "{self._second_text}.{int((now - second) * 1000):03d}+00:00", {head}'
            f'"request_id": {_json_id(request_id)}, {tail}"caller": {self._caller(caller)}, '
            f'"duration_ms": {round(elapsed_s * 1000, 3)!r}}}\n'
        )

    def _encode(self, method: str, status: str, level: int) -> tuple[str, str]:
        """The line's fixed pieces for a method, status and level (kept: a bounded set)."""
        pieces = (
            f'"level": {json.dumps(logging.getLevelName(level))}, '
            f'"logger": {json.dumps(self._logger.name, ensure_ascii=False)}, '
            f'"message": {json.dumps(redact(f"rpc {method} {status}"), ensure_ascii=False)}, ',
            f'"rpc_method": {json.dumps(redact(method), ensure_ascii=False)}, '
            f'"status": {json.dumps(redact(status), ensure_ascii=False)}, ',
        )
        if len(self._pieces) < _MAX_KEPT:
            self._pieces[(method, status, level)] = pieces
        return pieces

    def _caller(self, caller: str | None) -> str:
        """The caller's name as JSON (kept per name: callers are the policy's few)."""
        text = self._callers.get(caller)
        if text is None:
            text = json.dumps(caller if caller is None else redact(caller), ensure_ascii=False)
            if len(self._callers) < _MAX_KEPT:
                self._callers[caller] = text
        return text


_MAX_KEPT = 4096
"""Encoded pieces and caller names kept at most (each set is small in practice)."""


def _json_id(request_id: str | None) -> str:
    """A request id as JSON: ids are letters, digits and `._:-` (checked at the edge), so
    quoting is all the encoding they need; anything else goes through json."""
    if request_id is None:
        return "null"
    if _PLAIN_ID.fullmatch(request_id):
        return f'"{request_id}"'
    return json.dumps(redact(request_id), ensure_ascii=False)


_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_installed: list[JsonLinesHandler] = []
"""The handler `configure_logging` installed last (empty before)."""


def _fast_handler(level: int) -> JsonLinesHandler | None:
    """The installed JSON handler when it is root's only one and takes `level` unfiltered."""
    handlers = logging.root.handlers
    if len(handlers) != 1 or not _installed or handlers[0] is not _installed[0]:
        return None
    handler = _installed[0]
    if handler.filters or level < handler.level or logging.root.filters:
        return None
    return handler


def configure_logging(*, level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines; replaces root handlers."""
    handler = JsonLinesHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    _installed[:] = [handler]
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
