"""Storage tests against real SQLite files: repositories, units of work, crypto, migrations."""
