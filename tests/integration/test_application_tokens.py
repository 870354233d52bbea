"""The API V3 application token end to end: ApplicationTokens over the Smartcar adapter,
our IAM client and the simulator's `POST /oauth2/token` on loopback, stored in a real
database. Grants are counted by the simulator (`token_grants.client_credentials`); the
gateway's clock and the simulator's start at the same instant and move together.

Two "replicas" are two ApplicationTokens, each with its own engine, HTTP client and lock,
on one database (SQLite file, and PostgreSQL): after the token's hour they cause exactly
one grant between them. Nothing here waits on a real timer: a replica waiting for the
other's grant re-reads the record at every turn of the event loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.simulator import RunningSimulator, SimulatorConfig, serve_simulator
from clients.smartcar import Secret as ClientSecret
from clients.smartcar.v3 import ApplicationCredentials, SmartcarIAM, V3Endpoints
from gateway.core import errors
from gateway.core.application_tokens import ApplicationTokens
from gateway.core.metrics import RecordingMetrics
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar.iam import SmartcarApplicationAuth
from storage.crypto import Keyring, TokenCipher
from storage.database import create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.conftest import Postgres
from tests.instants import START, START_S
from tests.integration.storage.test_tokens_at_rest import database_bytes

CLIENT_ID = "fleet-v3-client"
OLD_SECRET, NEW_SECRET = "cs-old-5e1f0c2a9b7d", "cs-new-8a3c6e1b4d0f"
CIPHER = TokenCipher(Keyring({"k1": b"k" * 32}, active="k1"))
HOUR_S = 3600


async def _no_timer(_: float) -> None:
    """The replicas' wait between reads of a claimed record: one turn of the event loop."""
    await asyncio.sleep(0)


@dataclass
class World:
    """The simulator, the shared clock, and a way to open replicas on one database."""

    sim: RunningSimulator
    http: httpx.AsyncClient
    clock: ManualClock
    database_url: str
    stack: AsyncExitStack

    async def replica(self, *secrets: str) -> ApplicationTokens:
        """An ApplicationTokens with its own engine and HTTP client, configured with
        `secrets` (default: the old one) tried in that order."""
        engine = create_engine(self.database_url)
        self.stack.push_async_callback(engine.dispose)
        http = await self.stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
        credentials = ApplicationCredentials(
            client_id=CLIENT_ID,
            client_secrets=tuple(ClientSecret(s) for s in secrets or (OLD_SECRET,)),
        )
        iam = SmartcarIAM(
            http=http,
            credentials=credentials,
            endpoints=V3Endpoints.for_base_url(self.sim.base_url),
            clock=self.clock.now,
        )
        return ApplicationTokens(
            auth=SmartcarApplicationAuth(iam=iam, client_id=CLIENT_ID),
            uow=unit_of_work_factory(engine, CIPHER),
            clock=self.clock,
            sleep=_no_timer,
            jitter=lambda: 0.5,
            metrics=RecordingMetrics(),
        )

    async def advance(self, seconds: float) -> None:
        """Move the gateway's and the simulator's clocks together."""
        self.clock.advance(seconds)
        await self.control("POST", "/sim/clock", {"advance_seconds": seconds})

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control API; return its JSON."""
        response = await self.http.request(method, path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def grants(self) -> int:
        """How many application tokens the simulator has issued."""
        stats = await self.control("GET", "/sim/stats")
        return int(stats["token_grants"]["client_credentials"])

    async def refusals(self) -> int:
        """How many token requests the simulator refused as invalid_client."""
        stats = await self.control("GET", "/sim/stats")
        return int(stats["token_rejections"]["invalid_client"])

    async def accepts(self, token: Secret) -> bool:
        """Whether the simulator's Connections API accepts `token` as a bearer token."""
        response = await self.http.get(
            "/v3/connections", headers={"Authorization": f"Bearer {token.reveal()}"}
        )
        assert response.status_code in (200, 401), response.text
        return response.status_code == 200


@asynccontextmanager
async def world_on(database_url: str) -> AsyncIterator[World]:
    """A simulator accepting only the old secret, and a migrated database at `database_url`."""
    config = SimulatorConfig.fast(
        client_id=CLIENT_ID,
        client_secret=OLD_SECRET,
        start_at_s=START_S,
        vehicle_rate_limit=None,
        app_rate_limit=None,
    )
    engine = create_engine(database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(serve_simulator(config))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=sim.base_url))
        yield World(sim, http, ManualClock(START), database_url, stack)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The world on a SQLite file."""
    async with world_on(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}") as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database two replicas share: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.new_database()


async def test_one_grant_serves_every_caller_for_its_hour(world: World) -> None:
    """200 concurrent first calls: one grant, a token the simulator accepts; 50 minutes
    later it is still the token, with no further grant."""
    tokens = await world.replica()
    handed = await asyncio.gather(*(tokens.current() for _ in range(200)))
    assert len(set(handed)) == 1
    assert await world.grants() == 1
    assert await world.accepts(handed[0])
    await world.advance(50 * 60 - 1)
    assert await tokens.current() == handed[0]
    assert await world.grants() == 1


async def test_the_token_is_renewed_before_it_expires(world: World) -> None:
    """Ten minutes before its end (jitter 0.5) the token is replaced by one grant; callers
    arriving while the renewal is under way still get the old token, valid for minutes
    more; the new token works at the simulator."""
    tokens = await world.replica()
    first = await tokens.current()
    await world.advance(50 * 60)
    during = await asyncio.gather(*(tokens.current() for _ in range(50)))
    renewed = await tokens.current()
    assert renewed != first
    assert set(during) <= {first, renewed}
    assert renewed in during
    assert await world.grants() == 2
    assert await world.accepts(renewed)
    assert await world.accepts(first)


async def test_a_401_costs_one_new_token_however_many_callers_saw_it(world: World) -> None:
    """The simulator's clock runs ahead, so it refuses a token the gateway still deems
    valid: 50 concurrent rejections of it cause one grant, and all get the new token."""
    tokens = await world.replica()
    first = await tokens.current()
    await world.control("POST", "/sim/clock", {"advance_seconds": HOUR_S})
    assert not await world.accepts(first)
    replaced = await asyncio.gather(*(tokens.rejected(first) for _ in range(50)))
    assert set(replaced) == {replaced[0]}
    assert await world.grants() == 2
    assert await world.accepts(replaced[0])


async def test_a_client_secret_rotates_at_smartcar_without_a_restart(world: World) -> None:
    """Configured with (old, new) while Smartcar knows only old: old is used. The new one
    is added at Smartcar and the old one deleted: at renewal old is refused once, new gets
    the token, and the next renewal asks with new straight away."""
    tokens = await world.replica(OLD_SECRET, NEW_SECRET)
    await tokens.current()
    await world.control("POST", "/sim/secrets", {"secret": NEW_SECRET})
    await world.control("DELETE", "/sim/secrets", {"secret": OLD_SECRET})
    await world.advance(HOUR_S)
    assert await world.accepts(await tokens.current())
    assert (await world.grants(), await world.refusals()) == (2, 1)
    await world.advance(HOUR_S)
    assert await world.accepts(await tokens.current())
    assert (await world.grants(), await world.refusals()) == (3, 1)


async def test_refused_credentials_say_so_and_never_show_a_secret(world: World) -> None:
    """Every configured secret refused: ApplicationCredentialsRefused naming the client
    credentials, without the secrets in its message or repr; no token is stored."""
    tokens = await world.replica("cs-wrong-1", "cs-wrong-2")
    with pytest.raises(errors.ApplicationCredentialsRefused) as refused:
        await tokens.current()
    shown = f"{refused.value} {refused.value!r} {refused.value.upstream!r}"
    assert "client credentials" in shown
    assert "cs-wrong" not in shown
    assert (await world.grants(), await world.refusals()) == (0, 2)


async def test_two_replicas_after_the_tokens_hour_grant_exactly_once(
    shared_database: str,
) -> None:
    """Two replicas (own engine, client and lock) on one database: their first calls, 50
    each at once, cost one grant; after the token's hour, 50 more each cost one more."""
    async with world_on(shared_database) as world:
        a, b = await world.replica(), await world.replica()
        first = await asyncio.gather(*(r.current() for _ in range(50) for r in (a, b)))
        assert len(set(first)) == 1
        assert await world.grants() == 1
        await world.advance(HOUR_S)
        after = await asyncio.gather(*(r.current() for _ in range(50) for r in (a, b)))
        assert len(set(after)) == 1
        assert after[0] != first[0]
        assert await world.grants() == 2
        assert await world.accepts(after[0])


async def test_no_token_or_secret_leaks_into_logs_errors_or_the_database(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    """Grants, a renewal, a 401, a rotated secret and refused credentials: no issued
    application token and no client secret appears in a log line, an error, or a byte of
    the database files."""
    shown: list[str] = []
    async with world_on(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}") as world:
        tokens = await world.replica(OLD_SECRET, NEW_SECRET)
        await tokens.current()
        await world.advance(HOUR_S)
        await tokens.rejected(await tokens.current())
        await world.control("POST", "/sim/secrets", {"secret": NEW_SECRET})
        await world.control("DELETE", "/sim/secrets", {"secret": OLD_SECRET})
        await tokens.rejected(await tokens.current())
        refused = await world.replica("cs-wrong-1")
        with pytest.raises(errors.GatewayError) as failure:
            await refused.rejected(await tokens.current())
        shown += [str(failure.value), repr(failure.value), repr(failure.value.upstream)]
        issued = world.sim.world.issued_secrets()
        assert len(issued) >= 3
    haystacks = {
        "logs": captured_logs.getvalue().encode(),
        "errors": "\n".join(shown).encode(),
        "database": database_bytes(tmp_path / "gateway.db"),
    }
    assert haystacks["database"]  # the tokens were written there, encrypted
    leaked = [
        f"{where}: {secret[:6]}…"
        for where, data in haystacks.items()
        for secret in [*issued, OLD_SECRET, NEW_SECRET, "cs-wrong-1"]
        if secret.encode() in data
    ]
    assert leaked == []
