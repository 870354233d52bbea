"""A Smartcar API simulator: a real HTTP server speaking Smartcar's wire format.

It serves simulated Connect (`/oauth/authorize`), the token endpoint (`/oauth/token`),
the Vehicle API v2.0 (`/v2.0/…`), the Management API, and a control API (`/sim/…`) for
tests, and delivers Smartcar's v4 webhooks (signed, with Smartcar's retry schedule) to the
callbacks registered under `/sim/webhooks`. The official `smartcar` SDK works against it
through its origin variables (`SMARTCAR_API_ORIGIN`, `SMARTCAR_AUTH_ORIGIN` =
`<base_url>/oauth/token`, `SMARTCAR_CONNECT_ORIGIN`, `SMARTCAR_MANAGEMENT_API_ORIGIN`, all
`<base_url>` otherwise).

    async with serve_simulator(SimulatorConfig.fast()) as sim:
        ...  # httpx against sim.base_url

    with SimulatorThread(SimulatorConfig()) as sim:
        ...  # a synchronous client against sim.base_url

Modules: `config` (settings), `clock` (simulated time), `fleet` (the seeded catalog),
`vehicles` (vehicle state), `readings` (what cars report), `accounts` (users, connections,
tokens), `connect` (simulated Connect), `limits`, `faults`, `error_bodies` (Smartcar's
error bodies and the exceptions carrying them), `stats`, `admission` (the checks before
serving), `delivery` (responses, transport faults), `webhooks` and `webhook_payloads`
(Smartcar v4 webhook events delivered to registered callbacks), the routes
(`oauth_routes`, `vehicle_routes`, `batch`, `management_routes`, `control_routes`,
`webhook_routes`), `app`, `runner`, `state_file` (the state kept between runs, when
asked) and `cli`.
"""

from clients.simulator.config import BucketLimit, SimulatorConfig
from clients.simulator.runner import RunningSimulator, SimulatorThread, serve_simulator
from clients.simulator.state_file import StateFile, StateFileError, StoredClient

__all__ = [
    "BucketLimit",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorThread",
    "StateFile",
    "StateFileError",
    "StoredClient",
    "serve_simulator",
]
