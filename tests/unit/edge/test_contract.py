"""The proto contract: fixed names, comments everywhere, and reflection serving them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.grpc.reflection import CommentedPool, documented_files

FILE_NAME = "gateway/api/v1/vehicle_gateway.proto"

FIXED_REQUEST_FIELDS = {
    "GetConnectUrl": {"vehicle_id"},
    "Connect": {"vehicle_id", "code", "state"},
    "GetTelemetry": {"vehicle_id", "fields", "max_age"},
    "Lock": {"vehicle_id", "request_id"},
    "Unlock": {"vehicle_id", "request_id"},
    "Disconnect": {"vehicle_id"},
    "StartRental": {"vehicle_id", "rental_id"},
    "EndRental": {"vehicle_id", "rental_id"},
    "GetVehicle": {"vehicle_id"},
    "ListVehicles": set(),
    "WatchVehicles": set(),
    "CheckCompatibility": {"vin", "country"},
    "SetRequestAllowance": {"vehicle_id"},
    "StartCharge": {"vehicle_id", "request_id"},
    "StopCharge": {"vehicle_id", "request_id"},
    "SetChargeLimit": {"vehicle_id", "request_id"},
    "GetRental": {"rental_id"},
    "ListRentals": set(),
    "WatchVehicleEvents": set(),
}


def test_service_and_rpc_names_are_the_fixed_ones() -> None:
    """vehiclegateway.v1.VehicleGateway has the ten RPCs of the design, WatchVehicles,
    CheckCompatibility, SetRequestAllowance, the charge commands, GetRental, ListRentals and
    WatchVehicleEvents."""
    service = pb.DESCRIPTOR.services_by_name["VehicleGateway"]
    assert service.full_name == "vehiclegateway.v1.VehicleGateway"
    assert {m.name for m in service.methods} == set(FIXED_REQUEST_FIELDS)


@pytest.mark.parametrize(("rpc", "fields"), sorted(FIXED_REQUEST_FIELDS.items()))
def test_requests_carry_the_fixed_field_names(rpc: str, fields: set[str]) -> None:
    """Each request message has the fixed field names the design requires."""
    method = pb.DESCRIPTOR.services_by_name["VehicleGateway"].methods_by_name[rpc]
    assert fields <= set(method.input_type.fields_by_name)


def test_max_age_is_a_duration_and_fields_a_repeated_enum() -> None:
    """max_age is a google.protobuf.Duration; fields is a repeated TelemetryField."""
    request = pb.GetTelemetryRequest.DESCRIPTOR.fields_by_name
    assert request["max_age"].message_type.full_name == "google.protobuf.Duration"
    assert request["fields"].enum_type.full_name == "vehiclegateway.v1.TelemetryField"
    assert request["fields"].is_repeated


def test_enums_start_with_unspecified() -> None:
    """Every enum's zero member is *_UNSPECIFIED."""
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values_by_number[0].name.endswith("_UNSPECIFIED"), enum.name


def _declarations(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Yield (name, source path) for every message, field, oneof, enum, value, RPC."""

    def message(
        m: descriptor_pb2.DescriptorProto, path: tuple[int, ...]
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        yield m.name, path
        for i, f in enumerate(m.field):
            yield f"{m.name}.{f.name}", (*path, 2, i)
        for i, o in enumerate(m.oneof_decl):
            if not o.name.startswith("_"):  # proto3 `optional` makes synthetic oneofs
                yield f"{m.name}.{o.name}", (*path, 8, i)
        for i, nested in enumerate(m.nested_type):
            yield from message(nested, (*path, 3, i))
        for i, e in enumerate(m.enum_type):
            yield from enum(e, (*path, 4, i))

    def enum(
        e: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...]
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        yield e.name, path
        for i, v in enumerate(e.value):
            yield f"{e.name}.{v.name}", (*path, 2, i)

    for i, m in enumerate(file.message_type):
        yield from message(m, (4, i))
    for i, e in enumerate(file.enum_type):
        yield from enum(e, (5, i))
    for i, s in enumerate(file.service):
        yield s.name, (6, i)
        for j, rpc in enumerate(s.method):
            yield f"{s.name}.{rpc.name}", (6, i, 2, j)


def test_every_declaration_is_documented() -> None:
    """Every message, field, enum, value, service and RPC has a comment (grpcurl shows it)."""
    file = documented_files()[FILE_NAME]
    commented = {
        tuple(location.path)
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }
    missing = [name for name, path in _declarations(file) if path not in commented]
    assert not missing


def _bare(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Return a copy without comments and JSON names (protoc adds those to descriptor sets)."""
    bare = descriptor_pb2.FileDescriptorProto()
    bare.CopyFrom(file)
    bare.ClearField("source_code_info")
    pending = list(bare.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        for field in message.field:
            field.ClearField("json_name")
    return bare


def test_documented_files_match_the_generated_descriptors() -> None:
    """The commented descriptor set is the generated module's descriptor plus comments."""
    documented = documented_files()
    assert set(documented) == {FILE_NAME}
    generated = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(generated)
    assert _bare(documented[FILE_NAME]) == _bare(generated)


def test_commented_pool_serves_comments_and_falls_back() -> None:
    """Lookups of the contract copy with comments; other files come from the pool as is."""
    pool = CommentedPool(descriptor_pool.Default(), documented_files())
    ours = descriptor_pb2.FileDescriptorProto()
    pool.FindFileContainingSymbol("vehiclegateway.v1.VehicleGateway").CopyToProto(ours)
    assert ours.source_code_info.location
    deps = pool.FindFileByName(FILE_NAME).dependencies
    assert {d.name for d in deps} == {
        "google/protobuf/duration.proto",
        "google/protobuf/timestamp.proto",
    }
    duration = descriptor_pb2.FileDescriptorProto()
    deps[0].CopyToProto(duration)
    assert duration.name == deps[0].name
    assert pool.FindMessageTypeByName("vehiclegateway.v1.Vehicle").name == "Vehicle"
