"""JsonObject: a decoded JSON object read key by key, with type checks and named failures.

Shared by the v2 decoders and the V3 JSON:API readers. A key that is missing or of the
wrong type raises SmartcarProtocolError naming the object and the key, never the value
(a value may be anything Smartcar or a proxy sent, a token included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from clients.smartcar.errors import SmartcarProtocolError

__all__ = ["JsonObject", "is_digits"]

_MAX_DIGITS = 30  # far beyond any count or epoch; int() refuses thousands of digits
_MAX_INTEGER = 2**63 - 1  # what a database column holds; JSON integers are unbounded here


def is_digits(text: str) -> bool:
    """Tell whether ``text`` is a plain ASCII decimal integer that ``int()`` reads safely
    (``"²".isdigit()`` is true, and ``int()`` refuses it)."""
    return 0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()


class JsonObject:
    """A JSON object whose fields are read with type checks and named failures."""

    def __init__(self, raw: object, what: str) -> None:
        if not isinstance(raw, Mapping):
            raise SmartcarProtocolError(f"{what}: expected a JSON object")
        self._raw = raw
        self._what = what

    @property
    def what(self) -> str:
        """The object's name in error messages (``connection.attributes``)."""
        return self._what

    @property
    def raw(self) -> Mapping[str, object]:
        """The decoded object itself."""
        return self._raw

    def fail(self, key: str, expected: str) -> SmartcarProtocolError:
        """Return the error for ``key`` not being ``expected``."""
        return SmartcarProtocolError(f"{self._what}: '{key}' must be {expected}")

    def get(self, key: str) -> object:
        """Return the raw value at ``key`` (None when absent)."""
        return self._raw.get(key)

    def number(self, key: str) -> float:
        """Return a number (as a float); absent or null is a failure."""
        value = self.optional_number(key)
        if value is None:
            raise self.fail(key, "a number")
        return value

    def optional_number(self, key: str) -> float | None:
        """Return a number (as a float), or None when absent or null."""
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number or null")
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            raise self.fail(key, "a number or null") from None

    def finite_number(self, key: str) -> float | None:
        """Return a finite number or None; NaN and infinities (Python's JSON reads them)
        and numbers too large for a float are refused."""
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number or null")
        try:
            number = float(value)
        except OverflowError:
            raise self.fail(key, "a finite number") from None
        if not math.isfinite(number):
            raise self.fail(key, "a finite number")
        return number

    def integer(self, key: str) -> int:
        """Return an integer within 64 bits (digits in a string count)."""
        value = self._raw.get(key)
        if isinstance(value, str) and is_digits(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _MAX_INTEGER:
            raise self.fail(key, "an integer")
        return value

    def optional_integer(self, key: str) -> int | None:
        """Return an integer (digits in a string count), or None when absent or null."""
        return None if self._raw.get(key) is None else self.integer(key)

    def string(self, key: str) -> str:
        """Return a string."""
        value = self._raw.get(key)
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def optional_string(self, key: str) -> str | None:
        """Return a string, or None when absent or null."""
        return None if self._raw.get(key) is None else self.string(key)

    def boolean(self, key: str) -> bool:
        """Return a boolean."""
        value = self._raw.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, "a boolean")
        return value

    def optional_boolean(self, key: str) -> bool | None:
        """Return a boolean, or None when absent or null."""
        return None if self._raw.get(key) is None else self.boolean(key)

    def strings(self, key: str) -> tuple[str, ...]:
        """Return a list of strings as a tuple."""
        value = self._raw.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return tuple(value)

    def objects(self, key: str, *, required: bool = True) -> tuple[JsonObject, ...]:
        """Return a list of objects; absent or null is ``()`` unless ``required``."""
        value = self._raw.get(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "a list of objects")
        return tuple(JsonObject(item, f"{self._what}.{key}[]") for item in value)

    def object(self, key: str) -> JsonObject:
        """Return the object at ``key`` (absent or null is a failure)."""
        return JsonObject(self._raw.get(key), f"{self._what}.{key}")

    def optional_object(self, key: str) -> JsonObject | None:
        """Return the object at ``key``, or None when absent or null."""
        return None if self._raw.get(key) is None else self.object(key)
