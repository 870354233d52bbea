"""Secret hides its value everywhere but reveal(); redact scrubs secrets out of text."""

from __future__ import annotations

import copy
import pickle

import pytest

from clients.smartcar.secret import REDACTED, Secret, redact


def test_repr_and_str_hide_the_value() -> None:
    """Neither repr, str nor an f-string shows the wrapped value."""
    secret = Secret("hunter2-token")
    shown = [repr(secret), str(secret), f"{secret}", repr([secret])]
    assert all("hunter2" not in text for text in shown)


def test_reveal_returns_the_value() -> None:
    """reveal() hands over the exact value."""
    assert Secret("abc").reveal() == "abc"


def test_equality_compares_values_and_hash_agrees() -> None:
    """Two Secrets with one value are equal and hash alike; a str never equals a Secret."""
    assert Secret("x") == Secret("x")
    assert hash(Secret("x")) == hash(Secret("x"))
    assert Secret("x") != Secret("y")
    assert Secret("x") != "x"


def test_secret_is_immutable() -> None:
    """A Secret cannot be re-pointed at another value."""
    secret = Secret("x")
    with pytest.raises(AttributeError, match="immutable"):
        secret._value = "y"


def test_secret_refuses_pickling_but_copies() -> None:
    """Pickling would write the value out, so it is refused; copies are the same object."""
    secret = Secret("x")
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(secret)
    assert copy.deepcopy(secret) is secret


def test_secret_wraps_only_strings() -> None:
    """Wrapping a non-string is a TypeError."""
    with pytest.raises(TypeError, match="str"):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_redact_replaces_verbatim_and_percent_encoded_values() -> None:
    """Both the raw value and its URL-encoded form are replaced."""
    secret = Secret("a/b c")
    text = redact("raw a/b c, encoded a%2Fb%20c", [secret])
    assert text == f"raw {REDACTED}, encoded {REDACTED}"


def test_redact_ignores_empty_secrets() -> None:
    """An empty secret does not blank the whole text."""
    assert redact("unchanged", [Secret("")]) == "unchanged"
