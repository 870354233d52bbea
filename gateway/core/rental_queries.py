"""GetRental and ListRentals: rentals with their readings, for billing and the rental service.

ListRentals pages by (started_at, rental_id), oldest first: a rental that starts while a
caller pages lands after every rental already listed, so paging through never skips one.
Its page tokens (`gateway.core.paging`, signed) carry the last rental's start and id, and
are bound to the listing's filters: a token used with other filters is INVALID_ARGUMENT.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.errors import InvalidArgument, RentalNotFound
from gateway.core.model import RentalPage, RentalQuery, RentalRecord
from gateway.core.paging import PageTokens
from gateway.core.ports import UnitOfWorkFactory
from gateway.core.validation import DEFAULT_PAGE_SIZE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class RentalQueries:
    """GetRental and ListRentals."""

    def __init__(self, *, uow: UnitOfWorkFactory, page_tokens: PageTokens | None = None) -> None:
        self._uow = uow
        self._tokens = page_tokens or PageTokens()

    async def get(self, rental_id: str) -> RentalRecord:
        """Return one rental with its readings, or raise RentalNotFound."""
        async with self._uow.reader() as uow:
            record = await uow.rentals.record(rental_id)
        if record is None:
            raise RentalNotFound(
                f"no rental with id {rental_id}", metadata={"rental_id": rental_id}
            )
        return record

    async def page(
        self,
        *,
        vehicle_id: str | None,
        ended_after: datetime | None,
        ended_before: datetime | None,
        page_size: int,
        page_token: str,
    ) -> RentalPage:
        """Return one page ordered by (started_at, rental_id); the token resumes after the
        last rental of the previous page under the same filters."""
        listing = _listing(vehicle_id, ended_after, ended_before)
        size = page_size or DEFAULT_PAGE_SIZE
        query = RentalQuery(
            vehicle_id=vehicle_id,
            ended_after=ended_after,
            ended_before=ended_before,
            after=_position(self._tokens.resume_position(page_token, listing)),
            limit=size + 1,
        )
        async with self._uow.reader() as uow:
            records = await uow.rentals.records(query)
        shown = tuple(records[:size])
        token = ""
        if len(records) > size and shown:
            last = shown[-1].rental
            token = self._tokens.issue_position(
                listing, f"{_micros(last.started_at)}:{last.rental_id}"
            )
        return RentalPage(records=shown, next_page_token=token)


def _listing(
    vehicle_id: str | None, ended_after: datetime | None, ended_before: datetime | None
) -> str:
    """Name the listing and its filters, as a page token is bound to them."""
    bounds = (_micros(t) if t is not None else "" for t in (ended_after, ended_before))
    return "\0".join(("rentals", vehicle_id or "", *map(str, bounds)))


def _position(position: str | None) -> tuple[datetime, str] | None:
    """The (started_at, rental_id) a token's position names (tokens are signed: a
    malformed one is a bug, still answered INVALID_ARGUMENT rather than a crash)."""
    if position is None:
        return None
    micros, _, rental_id = position.partition(":")
    if not micros.isdigit() or not rental_id:
        raise InvalidArgument.of("page_token", "is not a token this service issued")
    return _EPOCH + int(micros) * _MICROSECOND, rental_id


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch (exact, unlike a float timestamp)."""
    return (moment - _EPOCH) // _MICROSECOND
