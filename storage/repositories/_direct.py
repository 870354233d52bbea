"""Statements on the hot paths, run on the driver's connection without SQLAlchemy's
execution machinery.

Running a statement built once through `AsyncConnection.execute` costs about 0.2-0.45 ms
of CPU on the gateway's machine (a greenlet switched into and out of, an execution
context, events, a result object), against 0.01-0.3 ms for sqlite3 to run it and for its
rows to be read: for a command, with its nine statements, that was a third of the CPU its
use case spent (docs/benchmarks.md, issue 15 part 2). A `Direct`
statement is compiled once per dialect and set of parameter names, with SQLAlchemy's own
compiler, bind processors and result processors (so values go in and come out exactly as
`execute` would give them), and is then run on the connection's driver: sqlite3 inline
through `storage.sqlite_driver.LoopConnection`, or asyncpg through the cursor of
SQLAlchemy's own asyncpg adapter, which starts the driver's transaction, keeps its
prepared statements and translates its errors.

The unit of work's transaction stays SQLAlchemy's: a statement run here first begins it
on the `AsyncConnection` when it has not begun (on SQLite that is `BEGIN IMMEDIATE`, or
`BEGIN` for a reader), so `commit()` and the rollback on exit end what was written here.
A driver error is raised as SQLAlchemy would raise it (`sqlalchemy.exc.DBAPIError` and its
subclasses, the driver's error as `orig`). Any other dialect, or a statement needing more
than binding and reading (Python-side column defaults), runs through `execute` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import RowMapping, exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
Columns = Mapping[str, Any] | RowMapping
"""A row's values by column name: a `DirectResult`'s, or a SQLAlchemy row's `_mapping`."""


@dataclass(frozen=True, slots=True)
class DirectResult:
    """The rows a statement returned (values as SQLAlchemy would give them), with the
    names of their columns, and how many rows it changed."""

    keys: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    rowcount: int

    def mappings(self) -> list[dict[str, Any]]:
        """The rows as dictionaries by column name."""
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]

    def one_or_none(self) -> dict[str, Any] | None:
        """The only row as a dictionary (None without one); more than one is a bug."""
        if not self.rows:
            return None
        if len(self.rows) > 1:
            raise exc.MultipleResultsFound("more than one row where one was expected")
        return dict(zip(self.keys, self.rows[0], strict=True))


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One statement compiled for one dialect and set of parameter names."""

    sql: str
    names: tuple[str, ...]
    """The bind parameters in the order the driver takes them."""
    binds: tuple[Processor, ...]
    fixed: Mapping[str, Any]
    """Values bound in the statement itself (not passed as parameters)."""
    keys: tuple[str, ...]
    results: tuple[tuple[Any, Dialect], ...]
    """Each result column's type, to make its processor from the driver's type code."""
    processors: dict[tuple[Any, ...], tuple[Processor, ...]] = field(default_factory=dict)
    """The result columns' processors, made once per set of the driver's type codes."""

    def parameters(self, given: Mapping[str, Any]) -> list[Any]:
        """The driver's positional parameters for `given` (processed as SQLAlchemy does)."""
        values = []
        for name, process in zip(self.names, self.binds, strict=True):
            if name in given:
                value = given[name]
            elif name in self.fixed:
                value = self.fixed[name]
            else:
                raise exc.ArgumentError(f"a value is required for bind parameter {name!r}")
            values.append(value if process is None else process(value))
        return values


class Direct:
    """A statement built once, run with parameters on the driver (see the module)."""

    __slots__ = ("_compiled", "_statement")

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, str, frozenset[str]], _Compiled | None] = {}

    async def run(self, connection: AsyncConnection, parameters: Mapping[str, Any]) -> DirectResult:
        """Run the statement with `parameters` in the connection's transaction."""
        compiled = self._compile(connection.dialect, parameters)
        if compiled is None:
            result = await connection.execute(self._statement, dict(parameters))
            rows = [tuple(row) for row in result] if result.returns_rows else []
            return DirectResult(tuple(result.keys()), rows, result.rowcount)
        return await _on_driver(connection, compiled, compiled.parameters(parameters), many=False)

    async def run_many(
        self, connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run the statement once per parameter set in `rows` (all with the same names),
        in the connection's transaction, returning nothing."""
        if not rows:
            return
        compiled = self._compile(connection.dialect, rows[0])
        if compiled is None:
            await connection.execute(self._statement, [dict(row) for row in rows])
            return
        values = [compiled.parameters(row) for row in rows]
        await _on_driver(connection, compiled, values, many=True)

    def _compile(self, dialect: Dialect, parameters: Mapping[str, Any]) -> _Compiled | None:
        """The statement compiled for `dialect` and these parameter names (None: run it
        through `execute`)."""
        key = (dialect.name, dialect.driver, frozenset(parameters))
        try:
            return self._compiled[key]
        except KeyError:
            pass
        statement: Any = self._statement
        compiled = statement.compile(dialect=dialect, column_keys=list(parameters))
        assert isinstance(compiled, SQLCompiler)
        self._compiled[key] = made = _made(compiled, dialect)
        return made


def _made(compiled: SQLCompiler, dialect: Dialect) -> _Compiled | None:
    """What running `compiled` directly needs, or None when it needs more than that."""
    supported = dialect.name == "sqlite" or dialect.driver == "asyncpg"
    if (
        not supported
        or not compiled.positional
        or compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
    ):
        return None
    names = tuple(compiled.positiontup)
    processors: Mapping[str, Any] = compiled._bind_processors
    return _Compiled(
        sql=compiled.string,
        names=names,
        binds=tuple(processors.get(name) for name in names),
        fixed={
            name: value
            for name, value in compiled.construct_params(_check=False).items()
            if not compiled.binds[name].required
        },
        keys=tuple(column.keyname for column in compiled._result_columns),
        results=tuple((column.type, dialect) for column in compiled._result_columns),
    )


def _rows(
    compiled: _Compiled, description: Sequence[Any] | None, fetched: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """The fetched rows with SQLAlchemy's result processors applied."""
    if not fetched:
        return []
    assert description is not None
    codes = tuple(column[1] for column in description)
    processors = compiled.processors.get(codes)
    if processors is None:
        processors = compiled.processors[codes] = tuple(
            type_._cached_result_processor(dialect, code)
            for (type_, dialect), code in zip(compiled.results, codes, strict=True)
        )
    if not any(processors):
        return [tuple(row) for row in fetched]
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in fetched
    ]


async def _on_driver(
    connection: AsyncConnection, compiled: _Compiled, values: list[Any], *, many: bool
) -> DirectResult:
    """Run `compiled` with `values` (a list of parameter lists when `many`) on the
    connection's driver, beginning the connection's transaction first if it has not."""
    if not connection.in_transaction():
        await connection.begin()
    sync = connection.sync_connection
    if sync is None:  # pragma: no cover - an open AsyncConnection has one
        raise exc.ResourceClosedError("the connection is closed")
    raw = sync.connection
    dialect = connection.dialect
    try:
        if dialect.name == "sqlite":
            return await _on_sqlite(raw.driver_connection, compiled, values, many=many)
        return await _on_asyncpg(raw.dbapi_connection, compiled, values, many=many)
    except dialect.loaded_dbapi.Error as error:
        raise await _failed(connection, raw.dbapi_connection, compiled, error) from error


async def _on_sqlite(
    driver: Any, compiled: _Compiled, values: list[Any], *, many: bool
) -> DirectResult:
    """Run on `storage.sqlite_driver.LoopConnection` (statements inline on the loop)."""
    sqlite = driver.sqlite
    cursor = await driver.run(sqlite.executemany if many else sqlite.execute, compiled.sql, values)
    fetched = cursor.fetchall() if cursor.description else []
    return DirectResult(
        compiled.keys, _rows(compiled, cursor.description, fetched), cursor.rowcount
    )


async def _on_asyncpg(
    adapter: Any, compiled: _Compiled, values: list[Any], *, many: bool
) -> DirectResult:
    """Run through SQLAlchemy's asyncpg adapter: its cursor begins the driver's
    transaction, prepares (and keeps) the statement and translates the driver's errors."""
    cursor = adapter.cursor()
    if many:
        await cursor._executemany(compiled.sql, values)
        return DirectResult(compiled.keys, [], -1)
    await cursor._prepare_and_execute(compiled.sql, values)
    fetched = list(cursor._rows)
    return DirectResult(
        compiled.keys, _rows(compiled, cursor.description, fetched), cursor.rowcount
    )


async def _failed(
    connection: AsyncConnection, adapter: Any, compiled: _Compiled, error: Exception
) -> BaseException:
    """The driver's `error` as SQLAlchemy raises it (IntegrityError for a broken unique
    key, and so on), with the statement but never its parameters' values. A lost
    connection is invalidated first, as `execute` does, so the pool discards it instead
    of handing it out again."""
    dialect = connection.dialect
    lost = bool(dialect.is_disconnect(cast(Any, error), adapter, None))
    if lost:
        await connection.invalidate(exception=error)
    return exc.DBAPIError.instance(
        compiled.sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
