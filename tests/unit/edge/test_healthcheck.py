"""The container probe's target: the health port the gateway was given, else the default."""

from __future__ import annotations

from gateway.edge.grpc.healthcheck import DEFAULT_ADDRESS, default_address


def test_the_probe_follows_the_health_port_setting() -> None:
    """With VG_HEALTH_LISTEN set the probe asks there (the image's loopback health port);
    without it, the development gRPC address."""
    assert default_address({"VG_HEALTH_LISTEN": "127.0.0.1:50052"}) == "127.0.0.1:50052"
    assert default_address({}) == DEFAULT_ADDRESS == "127.0.0.1:50051"
