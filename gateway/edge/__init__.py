"""The gateway's edges, each an adapter around the core, grouped by kind:

- `grpc/`: the server, servicer, message conversion, request limits, the access guard, the
  call frame (interceptor), the one table from domain errors to gRPC status, reflection and
  the container health probe;
- `smartcar/`: the core's `SmartcarAPI` port over `clients.smartcar`, Smartcar's failures
  translated, and Smartcar's webhook wire format (envelope, signals) decoded into the core's
  reports;
- `redis/`: rate-limit admission and the telemetry cache shared by replicas;
- `http/`: the webhook receiver and the Prometheus metrics endpoint;
- here: structured logs, the per-call context, clocks and leased background jobs.

Everything here depends on the core and nothing on storage: the composition root
(`gateway.app`, with `gateway.wiring`) hands in what the edges need of it. Import-linter
contracts in pyproject.toml keep both true."""
