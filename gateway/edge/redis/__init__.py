"""The Redis adapters shared by replicas: the rate-limit admission and the telemetry cache,
each failing over to the replica's own memory while Redis is unreachable."""
