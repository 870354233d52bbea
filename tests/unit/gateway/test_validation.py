"""Request field rules: each violation names its field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core import validation
from gateway.core.errors import InvalidArgument
from gateway.core.model import ConnectionStatus
from gateway.core.vehicles import decode_page_token, encode_page_token


@pytest.mark.parametrize("value", ["car-1", "A", "fleet:42", "x.y_z-1", "a" * 128])
def test_good_identifiers_pass(value: str) -> None:
    """Ids of letters, digits and . _ : - up to 128 characters are accepted."""
    assert validation.identifier("vehicle_id", value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "required"),
        ("a" * 129, "at most 128"),
        ("-car", "start with"),
        ("car 1", "only"),
        ("car/../x", "only"),
        ("cär", "only"),
    ],
)
def test_bad_identifiers_are_named(value: str, fragment: str) -> None:
    """Empty, long or odd ids give a violation naming the field."""
    violation = validation.identifier("vehicle_id", value)
    assert violation is not None
    assert violation.field == "vehicle_id"
    assert fragment in violation.description


def test_an_optional_identifier_may_be_empty() -> None:
    """request_id may be omitted."""
    assert validation.identifier("request_id", "", required=False) is None


@pytest.mark.parametrize("value", ["", "x" * 513, "has space", "tab\there", "ünïcode"])
def test_bad_opaque_values_are_refused(value: str) -> None:
    """Codes must be present, bounded, printable ASCII without spaces."""
    assert validation.opaque("code", value, max_length=512) is not None


@pytest.mark.parametrize(
    ("age", "ok"),
    [
        (timedelta(0), True),
        (timedelta(days=7), True),
        (timedelta(seconds=-1), False),
        (timedelta(days=7, seconds=1), False),
    ],
)
def test_max_age_bounds(age: timedelta, ok: bool) -> None:
    """max_age runs from 0 (always ask Smartcar) to 7 days."""
    assert (validation.max_age("max_age", age) is None) is ok


@pytest.mark.parametrize(("size", "ok"), [(0, True), (500, True), (-1, False), (501, False)])
def test_page_size_bounds(size: int, ok: bool) -> None:
    """Page sizes run from 0 (the default) to 500."""
    assert (validation.page_size("page_size", size) is None) is ok


def test_vins_are_checked_when_given() -> None:
    """An empty VIN is fine; a VIN with I/O/Q or the wrong length is not."""
    assert validation.vin("vin", "") is None
    assert validation.vin("vin", "1HGCM82633A004352") is None
    assert validation.vin("vin", "1HGCM82633A00435") is not None
    assert validation.vin("vin", "1HGCM82633A00435O") is not None


def test_ensure_lists_every_violation() -> None:
    """ensure() raises one InvalidArgument carrying all the bad fields."""
    with pytest.raises(InvalidArgument) as bad:
        validation.ensure(
            [validation.identifier("vehicle_id", ""), None, validation.page_size("page_size", -5)]
        )
    assert [v.field for v in bad.value.violations] == ["vehicle_id", "page_size"]


def test_page_tokens_round_trip_and_stay_bound_to_their_filter() -> None:
    """A page token resumes after its id, only under the status filter it was issued for."""
    token = encode_page_token("car-9", ConnectionStatus.ACTIVE)
    assert decode_page_token(token, ConnectionStatus.ACTIVE) == "car-9"
    assert decode_page_token("", None) is None
    with pytest.raises(InvalidArgument) as other_filter:
        decode_page_token(token, None)
    assert other_filter.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        decode_page_token("not-a-token!", None)
