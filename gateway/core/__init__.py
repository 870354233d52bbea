"""The gateway's core: domain values, errors, ports, pure policies and use cases.

Nothing here imports grpc, httpx, sqlalchemy or aiohttp, and nothing reads the clock or
does I/O on its own: adapters (storage/, clients/, gateway.edge) implement the ports in
`gateway.core.ports`, and time comes in through a `Clock`. An import-linter contract in
pyproject.toml keeps it that way.
"""
