"""Request field rules: each violation names its field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core import validation
from gateway.core.errors import InvalidArgument


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


def test_ensure_names_a_bounded_number_of_violations_and_counts_the_rest() -> None:
    """A request with thousands of bad fields names MAX_NAMED_VIOLATIONS of them, says how
    many more there are, and spells out only a few in the message."""
    bad = [validation.identifier(f"vehicle_ids[{i}]", "-") for i in range(1000)]
    with pytest.raises(InvalidArgument) as caught:
        validation.ensure(bad)
    error = caught.value
    assert len(error.violations) == validation.MAX_NAMED_VIOLATIONS
    assert error.omitted == 1000 - validation.MAX_NAMED_VIOLATIONS
    assert error.metadata == {"omitted_violations": str(error.omitted)}
    assert error.message.count("vehicle_ids[") == InvalidArgument.SUMMARISED
    assert error.message.endswith(f"; and {1000 - InvalidArgument.SUMMARISED} more")


def test_a_few_violations_are_all_named_without_a_count() -> None:
    """Below the cap every violation is named and nothing is said to be omitted."""
    with pytest.raises(InvalidArgument) as caught:
        validation.ensure([validation.identifier("vehicle_id", ""), None])
    assert caught.value.omitted == 0
    assert caught.value.metadata == {}
    assert "more" not in caught.value.message


@pytest.mark.parametrize(("size", "ok"), [(0, True), (8, True), (9, False), (3_000_000, False)])
def test_repeated_fields_are_counted_against_their_cap(size: int, ok: bool) -> None:
    """A repeated field holding more values than its cap is one violation naming it."""
    violation = validation.count("fields", size, limit=validation.MAX_TELEMETRY_FIELDS)
    assert (violation is None) is ok
    if violation is not None:
        assert violation.field == "fields"
        assert "at most 8" in violation.description


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("", True),
        ("AZaz09-_", True),
        ("x" * validation.MAX_PAGE_TOKEN_LENGTH, True),
        ("x" * (validation.MAX_PAGE_TOKEN_LENGTH + 1), False),
        ("not a token!", False),
        ("tok\ud800", False),
        ("\ud800", False),
        ("eyJ9==", False),
    ],
)
def test_page_tokens_are_bounded_url_safe_base64(token: str, ok: bool) -> None:
    """A page token is empty, or at most 512 URL-safe base64 characters (no padding)."""
    assert (validation.page_token("page_token", token) is None) is ok


def test_an_overlong_vin_is_refused_before_any_pattern() -> None:
    """A VIN longer than 17 characters is refused."""
    assert validation.vin("vin", "1HGCM82633A004352" * 1000) is not None


@pytest.mark.parametrize("value", ["US", "de", "Gb", "JP"])
def test_assigned_country_codes_pass_in_any_case(value: str) -> None:
    """ISO 3166-1 alpha-2 codes that are assigned are countries, whatever their case."""
    assert validation.country("country", value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "required"),
        ("USA", "ISO 3166-1 alpha-2"),
        ("UK", "ISO 3166-1 alpha-2"),
        ("EU", "ISO 3166-1 alpha-2"),
        ("ZZ", "ISO 3166-1 alpha-2"),
        ("1U", "ISO 3166-1 alpha-2"),
        ("ÜS", "ISO 3166-1 alpha-2"),
    ],
)
def test_anything_else_is_no_country(value: str, fragment: str) -> None:
    """Missing, three letters, reserved (UK, EU) or unassigned codes name `country`."""
    violation = validation.country("country", value)
    assert violation is not None
    assert (violation.field, fragment in violation.description) == ("country", True)


def test_a_required_vin_must_be_given_and_well_formed() -> None:
    """CheckCompatibility's VIN is required (unlike GetConnectUrl's), and still a VIN."""
    assert validation.required_vin("vin", "5yj3e1ea7kf317000") is None
    missing = validation.required_vin("vin", "")
    bad = validation.required_vin("vin", "5YJ3E1EA7KF31700Q")
    assert missing is not None
    assert "required" in missing.description
    assert bad is not None
    assert bad.field == "vin"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("User denied access to application", True),
        ("Zugriff für das Fahrzeug verweigert", True),
        ("", True),
        ("d" * 512, True),
        ("d" * 513, False),
        ("two\nlines", False),
        ("bell\x07", False),
        ("hidden\u202eoverride", False),
    ],
)
def test_free_text_is_bounded_and_printable(value: str, ok: bool) -> None:
    """Free text passed on (a Connect error's description) may be any printable text up to
    its bound; control and formatting characters are refused."""
    violation = validation.free_text("error_description", value, max_length=512)
    assert (violation is None) == ok
