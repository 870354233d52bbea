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

import functools
import json
import logging
import re
import sys
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


def configure_logging(*, level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines; replaces root handlers."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
