"""A Smartcar API simulator: a real HTTP server speaking Smartcar's wire format.

It serves simulated Connect (`/oauth/authorize`), the token endpoint (`/oauth/token`),
the Vehicle API v2.0 (`/v2.0/…`), the Management API, the Compatibility API by VIN
(`/v2.0/compatibility`), API V3 on the same port (the IAM
token endpoint `/oauth2/token`, the Vehicle and Connections APIs and the Management API
under `/v3/…`), and a control API (`/sim/…`) for tests, and delivers Smartcar's webhooks
(payload version 4.0: signed, with Smartcar's retry schedule) to the callbacks registered
under `/sim/webhooks`. The official `smartcar` SDK works against it through its origin
variables (`SMARTCAR_API_ORIGIN`, `SMARTCAR_AUTH_ORIGIN` = `<base_url>/oauth/token`,
`SMARTCAR_CONNECT_ORIGIN`, `SMARTCAR_MANAGEMENT_API_ORIGIN`,
`SMARTCAR_VEHICLE_API_V3_ORIGIN`, all `<base_url>` otherwise); a V3 client takes
`<base_url>` as its IAM, vehicle and management origins.

    async with serve_simulator(SimulatorConfig.fast()) as sim:
        ...  # httpx against sim.base_url

    with SimulatorThread(SimulatorConfig()) as sim:
        ...  # a synchronous client against sim.base_url

Modules: `config` (settings), `clock` (simulated time), `fleet` (the seeded catalog),
`vehicles` (vehicle state), `readings` (what cars report on v2), `signals` (what they
report as V3 signals), `accounts` (users, connections, tokens), `iam` (V3 client secrets
and application tokens), `connect` (simulated Connect), `limits`, `faults`, `error_bodies`
and `v3_errors`, `stats`, `admission` and `v3_admission` (the checks before serving),
`delivery` (responses, transport faults), `compatibility` (the Compatibility API),
`webhooks`, `webhook_payloads` and
`subscriptions` (webhook events delivered to registered callbacks and V3 subscriptions),
`v3_payloads`, `v3_paging` and `v3_commands` (V3 bodies, collections and commands), the
routes (`oauth_routes`, `iam_routes`, `vehicle_routes`, `batch`, `management_routes`,
`v3_routes`, `v3_connections`, `v3_management_routes`, `control_routes`, `secret_routes`,
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
