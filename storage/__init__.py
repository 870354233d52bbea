"""Persistence for the gateway: the SQL adapter of the core's storage ports.

    storage.database      create_engine(url), migrate(engine): SQLite (WAL) or PostgreSQL
    storage.schema        the tables (SQLAlchemy Core) and the UTC datetime column type
    storage.migrations    Alembic revisions, shipped with the package
    storage.crypto        AES-256-GCM token encryption: Keyring, TokenCipher
    storage.keys          key rotation: re-encrypting stored pairs, which keys are in use
    storage.permissions   owner-only files and directories for what the gateway keeps
    storage.repositories  one repository per table, rows <-> gateway.core.model values
    storage.uow           SqlUnitOfWork and unit_of_work_factory(engine, cipher)
    storage.transient     is_transient(exc): which database failures are worth a retry

The composition root opens it in one place, `gateway.wiring.open_storage`, for the server
(creating and migrating the database) and the command line (an existing database only,
`open_existing`). For the server that amounts to:

    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    cipher = TokenCipher(load_keyring(settings.token_keys, var_dir=settings.var_dir))
    uow_factory = unit_of_work_factory(engine, cipher)
"""
