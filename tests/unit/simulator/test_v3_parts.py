"""Pure parts of the simulator's API V3: client secrets, and pages of collections."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from clients.simulator.iam import ClientSecrets, SecretsError, fingerprint
from clients.simulator.v3_errors import V3Error
from clients.simulator.v3_paging import Page, collection, filters_of, page_of


def test_the_secret_a_simulator_starts_with_stays_valid_when_three_are_held() -> None:
    """`ensure` keeps the configured secret valid, the oldest other secret giving way."""
    secrets = ClientSecrets(["a", "b", "c"], any_secret=False)
    secrets.ensure("d")
    assert secrets.fingerprints() == [fingerprint(s) for s in ("b", "c", "d")]
    assert not secrets.accepts("a")
    assert secrets.accepts("d")


def test_secrets_refuse_duplicates_empties_and_a_fourth() -> None:
    """Adding an empty, an already valid, or a fourth secret raises SecretsError."""
    secrets = ClientSecrets.configured("a", ("b",))
    for bad in ("", "a"):
        with pytest.raises(SecretsError):
            secrets.add(bad)
    secrets.add("c")
    with pytest.raises(SecretsError, match="at most 3"):
        secrets.add("d")


def test_without_a_configured_secret_any_is_accepted_until_one_is_added() -> None:
    """No secret configured accepts anything; the first secret added ends that."""
    secrets = ClientSecrets.configured(None, ())
    assert secrets.accepts("whatever")
    secrets.add("real")
    assert not secrets.accepts("whatever")
    assert secrets.accepts("real")
    assert "real" not in repr(secrets)


def test_a_stored_list_of_more_than_three_secrets_is_refused() -> None:
    """A state file holding four secrets (edited by hand) does not load."""
    with pytest.raises(ValueError, match="more than 3"):
        ClientSecrets.from_json({"secrets": ["a", "b", "c", "d"], "any_secret": False})


def test_pages_link_to_their_neighbours_and_keep_the_filters() -> None:
    """Page 2 of 5 items in pages of 2 links prev 1, next 3, last 3, all with the filter."""
    items = [{"id": str(n)} for n in range(5)]
    body = collection(items, page=Page(number=2, size=2), path="/c", filters={"userId": "u"})
    assert body["data"] == [{"id": "2"}, {"id": "3"}]
    assert body["meta"] == {"pageNumber": 2, "pageSize": 2, "totalCount": 5}

    def number(link: str) -> str:
        query = parse_qs(urlsplit(link).query)
        assert query["filter[userId]"] == ["u"]
        return query["page[number]"][0]

    links = body["links"]
    assert [number(links[k]) for k in ("self", "first", "prev", "next", "last")] == [
        "2",
        "1",
        "1",
        "3",
        "3",
    ]


def test_an_empty_collection_has_one_empty_page() -> None:
    """No items: page 1 is empty, its last page is 1, and neither next nor prev exist."""
    body = collection([], page=Page(number=1, size=10), path="/c", filters={})
    assert body["data"] == []
    assert (body["links"]["next"], body["links"]["prev"]) == (None, None)
    assert "page%5Bnumber%5D=1" in body["links"]["last"]


def test_page_and_filter_parameters_are_checked() -> None:
    """Defaults apply when absent; out-of-range pages and unknown filters raise V3Error."""
    assert page_of({}, default_size=25, max_size=100) == Page(number=1, size=25)
    for query in ({"page[size]": "0"}, {"page[size]": "101"}, {"page[number]": "-1"}):
        with pytest.raises(V3Error):
            page_of(query, default_size=25, max_size=100)
    assert filters_of({"filter[userId]": "u", "other": "x"}, ("userId",)) == {"userId": "u"}
    with pytest.raises(V3Error):
        filters_of({"filter[userId": "u"}, ("userId",))
