"""Alembic environment: migrate the connection `storage.database.migrate` hands over.

Run from the alembic CLI instead (to write a new revision), it connects to the URL given
as `-x url=…` or `sqlalchemy.url`, through the same async engine the gateway uses.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from storage.database import create_engine
from storage.schema import UTCDateTime, metadata


def _render_item(kind: str, item: Any, _autogen_context: Any) -> str | Literal[False]:
    """Write our column types as the plain SQLAlchemy types they store as."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    """Run the pending migrations on a synchronous connection."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    """Connect to `url` with the gateway's engine settings and run the migrations."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _url() -> str:
    """Return the URL the alembic CLI was given."""
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database as `alembic -x url=sqlite+aiosqlite:///…`")
    return url


def _run_offline() -> None:
    """Write the migrations as SQL instead of running them."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode():
    _run_offline()
elif isinstance(_connection, Connection):
    _run(_connection)
else:
    asyncio.run(_run_with_url(_url()))
