"""The gateway's edges, each an adapter around the core: the gRPC server, servicer, call
frame (interceptor) and the one error table; the Smartcar adapter; Redis for shared limits
and telemetry; the webhook receiver; logs and metrics. Everything here depends on the core
and, but for the one import pyproject.toml notes, nothing on storage: the composition root
that wires them, `gateway.app`, hands in what they need of it (an import-linter contract)."""
