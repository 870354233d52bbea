"""The sync client (`clients.gateway.GatewayClient`) against grpc_testing's channel answering
as the gateway: the deadline and metadata each attempt carries, the typed errors it builds
from the rich status (google.rpc.Status in `grpc-status-details-bin`), and its retry rules.

The client's call blocks until the test answers, so each call runs on a daemon thread and
the test takes its RPCs from the channel (`take_unary_unary`). Waits between attempts go to
a fake clock: nothing sleeps. grpc_testing's channel drops the timeout it is given, so the
channel the client sees is a thin wrapper that records each attempt's timeout on its way
through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
import grpc_testing
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from clients.gateway import CallerCredentials, ClientPolicy, GatewayClient, calls
from clients.gateway import errors as client_errors
from clients.gateway.calls import Call
from clients.gateway.client import REQUEST_ID_KEY
from gateway.api.v1 import vehicle_gateway_pb2 as pb

T = TypeVar("T")
SERVICE = pb.DESCRIPTOR.services_by_name["VehicleGateway"]
DETAILS_KEY = "grpc-status-details-bin"
WITHIN_S = 10.0
"""How long a test waits for the client's thread before failing (never reached when green)."""
TOKEN = "caller-token-123"


class FakeClock:
    """A monotonic clock that moves only when the client sleeps on it."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The current reading."""
        return self.now_s

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock past it at once."""
        self.sleeps.append(seconds)
        self.now_s += seconds


@dataclass
class Attempt:
    """One RPC the client sent: its method and timeout as given to the channel."""

    method: str
    timeout_s: float | None


class _Recorded:
    """A unary-unary callable that records each invocation's timeout, then delegates."""

    def __init__(self, method: str, inner: Any, attempts: list[Attempt]) -> None:
        self._method = method
        self._inner = inner
        self._attempts = attempts

    def __call__(self, request: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        self._attempts.append(Attempt(self._method, timeout))
        return self._inner(request, timeout=timeout, **kwargs)


class RecordingChannel(grpc.Channel):
    """grpc_testing's channel, with each attempt's method and timeout recorded."""

    def __init__(self, inner: grpc_testing.Channel) -> None:
        self.inner = inner
        self.attempts: list[Attempt] = []

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return _Recorded(method, self.inner.unary_unary(method, *args, **kwargs), self.attempts)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.inner.close()


@dataclass
class Outcome(Generic[T]):
    """What a call on the client's thread returned or raised."""

    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None

    def result(self) -> T:
        """The call's answer (raising what it raised), once its thread ended."""
        assert self.done.wait(WITHIN_S), "the client's call never ended"
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


def in_background(work: Callable[[], T]) -> Outcome[T]:
    """Run a blocking client call on a daemon thread."""
    outcome: Outcome[T] = Outcome()

    def run() -> None:
        try:
            outcome.value = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test by `result`
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=run, daemon=True).start()
    return outcome


@dataclass
class Taken:
    """One RPC the gateway (the test) received: its metadata, request and handle."""

    metadata: dict[str, str]
    request: Message
    rpc: Any

    def answer(self, response: Message) -> None:
        """End the RPC with OK and `response`."""
        self.rpc.terminate(response, (), grpc.StatusCode.OK, "")

    def fail(self, code: grpc.StatusCode, message: str, *details: Message) -> None:
        """End the RPC with `code`, and a google.rpc.Status carrying `details` in the
        trailing metadata, as the gateway's status mapping sends it."""
        status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        trailing = ((DETAILS_KEY, status.SerializeToString()),) if details else ()
        self.rpc.terminate(None, trailing, code, message)


class Gateway:
    """The gateway's side of grpc_testing's channel: takes the client's RPCs."""

    def __init__(self) -> None:
        self.channel = RecordingChannel(
            grpc_testing.channel([SERVICE], grpc_testing.strict_real_time())
        )

    def take(self, method: str) -> Taken:
        """Wait for the client's next `method` RPC (failing the test if it never comes)."""
        taken: list[Taken] = []
        arrived = threading.Event()

        def run() -> None:
            metadata, request, rpc = self.channel.inner.take_unary_unary(
                SERVICE.methods_by_name[method]
            )
            taken.append(Taken(dict(metadata), request, rpc))
            arrived.set()

        threading.Thread(target=run, daemon=True).start()
        assert arrived.wait(WITHIN_S), f"the client never called {method}"
        return taken[0]


def error_info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    """The gateway's ErrorInfo (domain vehiclegateway)."""
    return error_details_pb2.ErrorInfo(
        reason=reason, domain=client_errors.DOMAIN, metadata=metadata
    )


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    """A RetryInfo asking to wait `seconds`."""
    whole = int(seconds)
    delay = duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


@pytest.fixture
def gateway() -> Gateway:
    """grpc_testing's channel answering as the gateway."""
    return Gateway()


@pytest.fixture
def clock() -> FakeClock:
    """The client's clock and sleep."""
    return FakeClock()


def client_over(
    gateway: Gateway,
    clock: FakeClock,
    *,
    token: str | None = TOKEN,
    policy: ClientPolicy | None = None,
) -> GatewayClient:
    """A sync client over the testing channel, sleeping on the fake clock."""
    return GatewayClient(
        gateway.channel,
        credentials=CallerCredentials(bearer_token=token, tls=False),
        policy=policy,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


def call_in_background(client: GatewayClient, call: Call[T], **options: Any) -> Outcome[T]:
    """Start `call` on the client's thread."""
    return in_background(lambda: client.call(call, **options))


# --- deadlines and metadata ----------------------------------------------------------------


def test_a_read_carries_the_read_deadline_the_token_and_a_request_id(
    gateway: Gateway, clock: FakeClock
) -> None:
    """GetVehicle is sent with the 10 s read deadline, `authorization: Bearer <token>` and a
    generated `x-request-id`, and returns the gateway's answer."""
    client = client_over(gateway, clock)
    outcome = call_in_background(client, calls.get_vehicle("car-1"))
    taken = gateway.take("GetVehicle")
    taken.answer(pb.Vehicle(vehicle_id="car-1", status=pb.ACTIVE))
    assert outcome.result() == pb.Vehicle(vehicle_id="car-1", status=pb.ACTIVE)
    assert taken.request == pb.GetVehicleRequest(vehicle_id="car-1")
    assert taken.metadata["authorization"] == f"Bearer {TOKEN}"
    assert len(taken.metadata[REQUEST_ID_KEY]) == 36  # a UUID
    assert [(a.method, a.timeout_s) for a in gateway.channel.attempts] == [
        ("/vehiclegateway.v1.VehicleGateway/GetVehicle", 10.0)
    ]


def test_a_command_gets_the_command_deadline_and_the_callers_request_id(
    gateway: Gateway, clock: FakeClock
) -> None:
    """Lock is sent with the 75 s command deadline and the `x-request-id` the caller gave;
    without a bearer token no `authorization` entry is sent."""
    client = client_over(gateway, clock, token=None)
    outcome = call_in_background(
        client, calls.lock("car-1", request_id="lock-7"), request_id="trace-42"
    )
    taken = gateway.take("Lock")
    taken.answer(pb.CommandResult())
    outcome.result()
    assert taken.request == pb.LockRequest(vehicle_id="car-1", request_id="lock-7")
    assert taken.metadata[REQUEST_ID_KEY] == "trace-42"
    assert "authorization" not in taken.metadata
    assert gateway.channel.attempts[0].timeout_s == 75.0


def test_an_explicit_timeout_and_a_policys_defaults_replace_the_defaults(
    gateway: Gateway, clock: FakeClock
) -> None:
    """`timeout_s` sets the call's deadline; a ClientPolicy sets the reads' default."""
    client = client_over(gateway, clock, policy=ClientPolicy(read_timeout_s=2.5))
    first = call_in_background(client, calls.get_rental("r-1"), timeout_s=0.75)
    gateway.take("GetRental").answer(pb.Rental(rental_id="r-1"))
    first.result()
    second = call_in_background(client, calls.get_rental("r-1"))
    gateway.take("GetRental").answer(pb.Rental(rental_id="r-1"))
    second.result()
    assert [a.timeout_s for a in gateway.channel.attempts] == [0.75, 2.5]


# --- typed errors from the status details ------------------------------------------------


def raised_by(
    gateway: Gateway,
    clock: FakeClock,
    call: Call[Any],
    code: grpc.StatusCode,
    message: str,
    *details: Message,
) -> client_errors.GatewayCallError:
    """The error the client raises when the gateway fails `call` once as given."""
    client = client_over(gateway, clock)
    outcome = call_in_background(client, call, request_id="rid-1")
    gateway.take(call.method).fail(code, message, *details)
    with pytest.raises(client_errors.GatewayCallError) as raised:
        outcome.result()
    return raised.value


def test_a_rental_holding_the_car_is_a_rental_active_error_naming_it(
    gateway: Gateway, clock: FakeClock
) -> None:
    """FAILED_PRECONDITION with ErrorInfo RENTAL_ACTIVE and a PreconditionFailure becomes
    RentalActive with the rental id, the violations and the call's request id."""
    violation = error_details_pb2.PreconditionFailure.Violation(
        type="RENTAL", subject="rental-9", description="a rental holds the vehicle"
    )
    error = raised_by(
        gateway,
        clock,
        calls.disconnect("car-1"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "car-1 is rented",
        error_info("RENTAL_ACTIVE", rental_id="rental-9"),
        error_details_pb2.PreconditionFailure(violations=[violation]),
    )
    assert isinstance(error, client_errors.RentalActive)
    assert (error.code, error.reason, error.rental_id) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RENTAL_ACTIVE",
        "rental-9",
    )
    assert error.violations == [("RENTAL", "rental-9", "a rental holds the vehicle")]
    assert error.request_id == "rid-1"
    assert error.message == "car-1 is rented"


def test_bad_fields_are_an_invalid_argument_with_each_fields_violation(
    gateway: Gateway, clock: FakeClock
) -> None:
    """INVALID_ARGUMENT with a BadRequest becomes InvalidArgument, field by field; the
    gateway's RequestInfo names the request id."""
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="vehicle_id", description="must not be empty"
            )
        ]
    )
    error = raised_by(
        gateway,
        clock,
        calls.get_vehicle(""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vehicle_id: must not be empty",
        bad,
        error_details_pb2.RequestInfo(request_id="gw-assigned-5"),
    )
    assert isinstance(error, client_errors.InvalidArgument)
    assert error.violations == {"vehicle_id": "must not be empty"}
    assert error.request_id == "gw-assigned-5"


def test_an_owner_who_must_act_carries_the_resolution_url(
    gateway: Gateway, clock: FakeClock
) -> None:
    """REAUTHENTICATION_REQUIRED becomes OwnerMustAct with Smartcar's resolution URL."""
    error = raised_by(
        gateway,
        clock,
        calls.unlock("car-1", request_id="u-1"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "the owner must act",
        error_info("REAUTHENTICATION_REQUIRED", resolution_url="https://example.test/fix"),
    )
    assert isinstance(error, client_errors.OwnerMustAct)
    assert error.resolution_url == "https://example.test/fix"


@pytest.mark.parametrize(
    ("code", "details", "expected", "reason"),
    [
        # A refusal by a rate limit: RetryInfo's delay is kept for the caller.
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            (error_info("RATE_LIMITED", limit="vehicle_reads"), retry_info(15)),
            client_errors.RateLimited,
            "RATE_LIMITED",
        ),
        (grpc.StatusCode.PERMISSION_DENIED, (), client_errors.PermissionDenied, ""),
        (grpc.StatusCode.UNAUTHENTICATED, (), client_errors.Unauthenticated, ""),
        (grpc.StatusCode.NOT_FOUND, (), client_errors.NotFound, ""),
        (grpc.StatusCode.DEADLINE_EXCEEDED, (), client_errors.DeadlineExceeded, ""),
        (grpc.StatusCode.INTERNAL, (), client_errors.GatewayCallError, ""),
        # Another service's ErrorInfo names no gateway reason: the code decides.
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            (error_details_pb2.ErrorInfo(reason="RENTAL_ACTIVE", domain="example.com"),),
            client_errors.PreconditionFailed,
            "",
        ),
        # The gateway's reason decides over the code.
        (
            grpc.StatusCode.UNAVAILABLE,
            (error_info("COMMAND_OUTCOME_UNKNOWN"),),
            client_errors.CommandOutcomeUnknown,
            "COMMAND_OUTCOME_UNKNOWN",
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            (error_info("CONNECT_ACCESS_DENIED", connect_error="access_denied"),),
            client_errors.ConnectFailed,
            "CONNECT_ACCESS_DENIED",
        ),
    ],
)
def test_each_status_becomes_its_typed_error(
    gateway: Gateway,
    clock: FakeClock,
    code: grpc.StatusCode,
    details: Sequence[Message],
    expected: type[client_errors.GatewayCallError],
    reason: str,
) -> None:
    """The class follows the gateway's ErrorInfo reason, else the status code; a reason
    from another domain is ignored. (Disconnect is never repeated: one answer decides.)"""
    error = raised_by(gateway, clock, calls.disconnect("car-1"), code, "refused", *details)
    assert type(error) is expected
    assert (error.code, error.reason) == (code, reason)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert error.retry_after_s == 15.0
        assert error.metadata == {"limit": "vehicle_reads"}


def test_an_error_names_neither_the_callers_token_nor_its_credentials(
    gateway: Gateway, clock: FakeClock
) -> None:
    """Neither the raised error's text nor the credentials' repr carries the bearer token."""
    error = raised_by(
        gateway, clock, calls.get_vehicle("car-1"), grpc.StatusCode.UNAUTHENTICATED, "who?"
    )
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN not in repr(CallerCredentials(bearer_token=TOKEN))


# --- retries ------------------------------------------------------------------------------


def test_a_read_is_repeated_after_unavailable_waiting_the_servers_retry_delay(
    gateway: Gateway, clock: FakeClock
) -> None:
    """UNAVAILABLE with RetryInfo 1.5 s: the client waits 1.5 s and repeats GetTelemetry
    with the same request and request id and what is left of the deadline."""
    client = client_over(gateway, clock)
    outcome = call_in_background(client, calls.get_telemetry("car-1"))
    first = gateway.take("GetTelemetry")
    first.fail(grpc.StatusCode.UNAVAILABLE, "Smartcar is down", retry_info(1.5))
    second = gateway.take("GetTelemetry")
    second.answer(pb.Telemetry(vehicle_id="car-1"))
    assert outcome.result() == pb.Telemetry(vehicle_id="car-1")
    assert clock.sleeps == [1.5]
    assert second.request == first.request
    assert second.metadata[REQUEST_ID_KEY] == first.metadata[REQUEST_ID_KEY]
    assert [a.timeout_s for a in gateway.channel.attempts] == [10.0, 8.5]


def test_without_a_retry_delay_the_backoff_doubles_until_the_attempts_run_out(
    gateway: Gateway, clock: FakeClock
) -> None:
    """Three UNAVAILABLE answers without RetryInfo: waits of 0.2 s and 0.4 s, three
    attempts in all, then Unavailable is raised."""
    client = client_over(gateway, clock)
    outcome = call_in_background(client, calls.list_vehicles())
    for _ in range(3):
        gateway.take("ListVehicles").fail(grpc.StatusCode.UNAVAILABLE, "try again")
    with pytest.raises(client_errors.Unavailable):
        outcome.result()
    assert clock.sleeps == pytest.approx([0.2, 0.4])
    assert len(gateway.channel.attempts) == 3


def test_a_servers_long_retry_delay_is_capped_and_a_wait_past_the_deadline_gives_up(
    gateway: Gateway, clock: FakeClock
) -> None:
    """RetryInfo 30 s is waited as the policy's 5 s cap; with 1 s left of the deadline, a
    0.2 s backoff is waited but RetryInfo 2 s is not: the error is raised at once."""
    client = client_over(gateway, clock)
    capped = call_in_background(client, calls.get_vehicle("car-1"))
    gateway.take("GetVehicle").fail(grpc.StatusCode.UNAVAILABLE, "busy", retry_info(30))
    gateway.take("GetVehicle").answer(pb.Vehicle(vehicle_id="car-1"))
    capped.result()
    assert clock.sleeps == [5.0]

    short = call_in_background(client, calls.get_vehicle("car-1"), timeout_s=1.0)
    gateway.take("GetVehicle").fail(grpc.StatusCode.UNAVAILABLE, "busy")
    gateway.take("GetVehicle").fail(grpc.StatusCode.UNAVAILABLE, "busy", retry_info(2))
    with pytest.raises(client_errors.Unavailable) as raised:
        short.result()
    assert raised.value.retry_after_s == 2.0
    assert clock.sleeps == [5.0, 0.2]


def test_a_command_whose_outcome_is_unknown_is_asked_again_with_its_request_id(
    gateway: Gateway, clock: FakeClock
) -> None:
    """Lock answered UNAVAILABLE COMMAND_OUTCOME_UNKNOWN is repeated with the same command
    request_id (the gateway replays its outcome), not a new command."""
    client = client_over(gateway, clock)
    outcome = call_in_background(client, calls.lock("car-1", request_id="lock-1"))
    first = gateway.take("Lock")
    first.fail(
        grpc.StatusCode.UNAVAILABLE, "no answer from the car", error_info("COMMAND_OUTCOME_UNKNOWN")
    )
    second = gateway.take("Lock")
    second.answer(pb.CommandResult(replayed=True))
    assert outcome.result().replayed
    assert (
        first.request == second.request == pb.LockRequest(vehicle_id="car-1", request_id="lock-1")
    )
    assert clock.sleeps == [0.2]


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, (retry_info(1),)),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ()),
        (grpc.StatusCode.ABORTED, ()),
        (grpc.StatusCode.INTERNAL, ()),
    ],
)
def test_codes_other_than_unavailable_are_never_repeated(
    gateway: Gateway, clock: FakeClock, code: grpc.StatusCode, details: Sequence[Message]
) -> None:
    """A safe read refused with any code but UNAVAILABLE raises after one attempt, without
    waiting (a rate limit's RetryInfo is the caller's to honour)."""
    error = raised_by(gateway, clock, calls.get_vehicle("car-1"), code, "no", *details)
    assert error.code is code
    assert len(gateway.channel.attempts) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "call",
    [
        calls.connect("car-1", state="state-1", user_id="owner-1"),
        calls.start_rental("car-1", rental_id="r-1"),
        calls.end_rental("car-1", rental_id="r-1"),
        calls.disconnect("car-1"),
    ],
    ids=lambda call: call.method,
)
def test_calls_that_are_not_safe_to_repeat_raise_at_the_first_unavailable(
    gateway: Gateway, clock: FakeClock, call: Call[Any]
) -> None:
    """Connect (single-use state), StartRental, EndRental and Disconnect answered
    UNAVAILABLE, even with RetryInfo, raise Unavailable after one attempt."""
    error = raised_by(gateway, clock, call, grpc.StatusCode.UNAVAILABLE, "down", retry_info(0.1))
    assert isinstance(error, client_errors.Unavailable)
    assert [a.method.rsplit("/", 1)[1] for a in gateway.channel.attempts] == [call.method]
    assert clock.sleeps == []


def test_a_channel_the_caller_made_is_left_open_by_close(
    gateway: Gateway, clock: FakeClock
) -> None:
    """Closing the client does not close a channel it was given: its maker owns it."""
    closed: list[bool] = []
    gateway.channel.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with client_over(gateway, clock):
        pass
    assert closed == []
