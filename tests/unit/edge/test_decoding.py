"""Request decoding: bad or oversized bytes become a marker, never an exception in grpc."""

from __future__ import annotations

import pytest

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import validation
from gateway.core.errors import InvalidArgument
from gateway.edge.grpc import decoding


def test_a_valid_request_is_parsed() -> None:
    """Bytes of the method's request message come out as that message."""
    decode = decoding.lenient(pb.GetVehicleRequest.FromString)
    assert decode is not None
    wire = pb.GetVehicleRequest(vehicle_id="car-1").SerializeToString()
    assert decode(wire) == pb.GetVehicleRequest(vehicle_id="car-1")


@pytest.mark.parametrize(
    "wire",
    [
        b"\xff\xff\xff",  # a field tag that never ends
        b"\x0a\x05car",  # a string longer than the bytes left
        b"\x0a\x03\xed\xa0\x80",  # a lone surrogate where UTF-8 is due
        b"\x0b" * 200 + b"\x0c" * 200,  # groups nested past protobuf's depth limit
    ],
    ids=["corrupt", "truncated", "surrogate", "nested"],
)
def test_bytes_that_are_no_request_become_a_marker(wire: bytes) -> None:
    """Bytes protobuf refuses become the UNPARSABLE marker, not a DecodeError."""
    decode = decoding.lenient(pb.GetVehicleRequest.FromString)
    assert decode is not None
    assert decode(wire) is decoding.UNPARSABLE


def test_oversized_bytes_are_refused_without_parsing() -> None:
    """More than MAX_REQUEST_BYTES never reach the parser."""
    parsed: list[bytes] = []

    def parse(data: bytes) -> object:
        parsed.append(data)
        return object()

    decode = decoding.lenient(parse)
    assert decode is not None
    assert decode(b"\0" * (decoding.MAX_REQUEST_BYTES + 1)) is decoding.TOO_LARGE
    assert parsed == []


def test_a_handler_without_deserializer_keeps_none() -> None:
    """A handler that takes raw bytes keeps taking them."""
    assert decoding.lenient(None) is None


def test_a_marker_is_invalid_argument_naming_the_request_without_internals() -> None:
    """The marker becomes INVALID_ARGUMENT on `request`; no protobuf or Python class name."""
    for marker in (decoding.UNPARSABLE, decoding.TOO_LARGE):
        with pytest.raises(InvalidArgument) as caught:
            decoding.ensure_decoded(marker)
        assert [v.field for v in caught.value.violations] == ["request"]
        for leak in ("DecodeError", "class", "protobuf", "Error parsing"):
            assert leak not in caught.value.message
    decoding.ensure_decoded(pb.GetVehicleRequest(vehicle_id="car-1"))


def test_the_largest_valid_request_fits_well_under_the_byte_cap() -> None:
    """WatchVehicles with every id at its maximum length and count is under half the cap,
    and the cap under grpc's own receive limit."""
    largest = pb.WatchVehiclesRequest(
        vehicle_ids=["v" * validation.MAX_ID_LENGTH] * validation.MAX_WATCH_VEHICLE_IDS,
        after_id=2**63 - 1,
    )
    assert largest.ByteSize() < decoding.MAX_REQUEST_BYTES // 2
    assert decoding.MAX_REQUEST_BYTES < decoding.MAX_RECEIVE_MESSAGE_BYTES
