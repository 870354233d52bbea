"""What a decoded JSON payload (a webhook body) may hold to be stored and read back anywhere.

    payload.too_deep(value)        # nesting beyond MAX_DEPTH: refuse the body
    payload.text_problem(value)    # "data.signals[0].code holds a lone surrogate", or None
    payload.storable(value)        # a copy whose strings every store keeps
    payload.printable(text)        # a reason or log line made safe the same way

JSON may escape lone UTF-16 surrogates (`"\\ud800"`) and NUL (`"\\u0000"`): Python decodes
them into `str`, but such a string cannot be encoded as UTF-8 (SQLite, logs, HTTP answers)
nor kept by PostgreSQL (text and jsonb refuse NUL and lone surrogates). `storable` replaces
each such character with U+FFFD, so the event can still be stored as a (failed) record.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_DEPTH = 32
"""Deepest nesting of objects and arrays accepted; Smartcar's events nest about 7 deep."""
REPLACEMENT = "\ufffd"
_MAX_PATH = 120


def clean(text: str) -> bool:
    """Tell whether every store can keep `text` (no lone surrogate, no NUL)."""
    return _bad_char(text) is None


def too_deep(value: object) -> bool:
    """Tell whether objects and arrays nest more than MAX_DEPTH levels deep in `value`."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list) and depth >= MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for _, child in _children(item))
    return False


def text_problem(value: object, *, path: str = "") -> str | None:
    """Return where the first string (or key) every store cannot keep is, and why; None if
    there is none."""
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, str):
            bad = _bad_char(item)
            if bad is not None:
                return f"{_short(at or '(the body)')} holds {bad}"
        if isinstance(item, Mapping):
            for key in item:
                bad = _bad_char(str(key))
                if bad is not None:
                    return f"a key in {_short(at or '(the body)')} holds {bad}"
        stack.extend(reversed([(at + step, child) for step, child in _children(item)]))
    return None


def storable(value: object) -> object:
    """Return a copy of a decoded JSON value (nesting at most MAX_DEPTH) whose strings and
    keys have each lone surrogate and NUL replaced with U+FFFD."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {printable(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def printable(text: str) -> str:
    """Return `text` with each lone surrogate and NUL replaced with U+FFFD."""
    if clean(text):
        return text
    return "".join(REPLACEMENT if _bad_char(char) else char for char in text)


def _bad_char(text: str) -> str | None:
    """Name the first character of `text` no store can keep, or None."""
    if "\x00" in text:
        return "a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone UTF-16 surrogate"
    return None


def _children(item: object) -> list[tuple[str, object]]:
    """Return an object's or array's members with the path step leading to each."""
    if isinstance(item, Mapping):
        return [(_step(str(key)), child) for key, child in item.items()]
    if isinstance(item, list):
        return [(f"[{index}]", child) for index, child in enumerate(item)]
    return []


def _step(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{key!a}]"


def _short(path: str) -> str:
    path = path.removeprefix(".")
    return path if len(path) <= _MAX_PATH else path[: _MAX_PATH - 1] + "…"
