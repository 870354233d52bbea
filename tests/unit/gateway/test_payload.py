"""What a decoded webhook body may hold: nesting depth and text every store keeps."""

from __future__ import annotations

import json

import pytest

from gateway.core import payload


def nested(levels: int) -> object:
    """Return arrays nested `levels` deep (built without recursion)."""
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_not() -> None:
    """MAX_DEPTH levels of objects and arrays pass; MAX_DEPTH + 1 is too deep."""
    assert not payload.too_deep(nested(payload.MAX_DEPTH))
    assert payload.too_deep(nested(payload.MAX_DEPTH + 1))
    assert payload.too_deep(nested(50_000))  # walked without recursion


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"data": {"signals": [{"code": "ok"}, {"code": "a\ud800"}]}}, "data.signals[1].code"),
        ({"data": {"note": "nul\x00"}}, "data.note holds a NUL character"),
        ({"data": {"bad\udfff": 1}}, "a key in data holds a lone UTF-16 surrogate"),
        ({"odd key": ["\ud83d"]}, "['odd key'][0] holds a lone UTF-16 surrogate"),
    ],
)
def test_text_no_store_keeps_is_found_with_its_path(value: object, problem: str) -> None:
    """Lone surrogates and NUL, in values or keys, are reported where they are."""
    found = payload.text_problem(value)
    assert found is not None
    assert problem in found


def test_clean_text_has_no_problem_even_outside_the_bmp() -> None:
    """Paired surrogates (an emoji) and any other Unicode are fine."""
    assert payload.text_problem({"name": "Käfer 🚗", "list": [1, 2.5, None, True]}) is None


def test_storable_replaces_only_the_bad_characters() -> None:
    """Each lone surrogate and NUL becomes U+FFFD, in keys and values; the rest is kept."""
    stored = payload.storable({"k\ud800": ["a\x00b", 7, {"ok": "🚗"}]})
    assert stored == {"k\ufffd": ["a\ufffdb", 7, {"ok": "🚗"}]}
    assert payload.text_problem(stored) is None
    json.dumps(stored, ensure_ascii=False).encode("utf-8")
