"""The gateway's edges, each an adapter around the core: the gRPC server, servicer, call
frame (interceptor) and the one error table; the Smartcar adapter; Redis for shared limits
and telemetry; the webhook receiver; logs and metrics. Everything here depends on the core;
the composition root that wires them is `gateway.app`."""
