"""Secret: a string that never shows itself, and the redaction of secrets from text."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any, NoReturn
from urllib.parse import quote

__all__ = ["REDACTED", "Secret", "redact"]

REDACTED = "[REDACTED]"


class Secret:
    """A token or password: ``repr`` and ``str`` hide it; ``reveal()`` hands it over."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret value; call this only where it goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        # Pickling would write the value out; persist it through reveal() on purpose.
        raise TypeError("Secret refuses to be pickled")


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """Return ``text`` with every secret (verbatim or percent-encoded) replaced by REDACTED."""
    for secret in secrets:
        value = secret.reveal()
        if not value:
            continue
        text = text.replace(value, REDACTED)
        encoded = quote(value, safe="")
        if encoded != value:
            text = text.replace(encoded, REDACTED)
    return text
