"""The Python client's charge calls: the right RPC and request, a command's deadline, and
one request id for every attempt (so a retry is never a second command)."""

from __future__ import annotations

from clients.gateway import calls
from gateway.api.v1 import vehicle_gateway_pb2 as pb


def test_the_charge_calls_are_commands_safe_to_repeat() -> None:
    """StartCharge, StopCharge and SetChargeLimit name their RPC, carry the vehicle (and
    the limit), get the command deadline, and may be repeated after UNAVAILABLE."""
    start = calls.start_charge("car-1", request_id="s-1")
    stop = calls.stop_charge("car-1", request_id="t-1")
    limit = calls.set_charge_limit("car-1", limit_percent=85, request_id="l-1")
    assert (start.method, stop.method, limit.method) == (
        "StartCharge",
        "StopCharge",
        "SetChargeLimit",
    )
    assert start.request == pb.StartChargeRequest(vehicle_id="car-1", request_id="s-1")
    assert stop.request == pb.StopChargeRequest(vehicle_id="car-1", request_id="t-1")
    assert limit.request == pb.SetChargeLimitRequest(
        vehicle_id="car-1", request_id="l-1", limit_percent=85
    )
    assert all(
        c.command and c.safe and c.response is pb.CommandResult for c in (start, stop, limit)
    )


def test_a_charge_call_without_a_request_id_gets_one_for_all_its_attempts() -> None:
    """Without a request id the call is given a fresh one, fixed in its request."""
    call = calls.start_charge("car-1")
    assert isinstance(call.request, pb.StartChargeRequest)
    assert call.request.request_id.startswith("cmd-")
    assert calls.start_charge("car-1").request != call.request
