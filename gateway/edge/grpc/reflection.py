"""Server reflection that keeps the contract's comments, so `grpcurl describe` documents it.

grpcio-reflection answers with `FileDescriptor.CopyToProto`, and protobuf's upb backend
leaves `source_code_info` (the comments) out of that copy. `CommentedPool` wraps the default
descriptor pool and answers file lookups with descriptors that copy themselves from the
generated `gateway.api.descriptor_set` (which has the comments) when it holds the file, and
from the pool otherwise (health, reflection, well-known types). Everything else passes
through to the pool. A test checks that the two agree apart from the comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from gateway.api.descriptor_set import FILE_DESCRIPTOR_SET


def documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Return the contract's file descriptors with their comments, by file name."""
    files = descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET)
    return {file.name: file for file in files.file}


class _CommentedFile:
    """A file descriptor as grpcio-reflection uses it: name, dependencies, CopyToProto."""

    def __init__(
        self, descriptor: FileDescriptor, sources: Mapping[str, descriptor_pb2.FileDescriptorProto]
    ) -> None:
        self._descriptor = descriptor
        self._sources = sources

    @property
    def name(self) -> str:
        """The file's name, e.g. `gateway/api/v1/vehicle_gateway.proto`."""
        return self._descriptor.name

    @property
    def dependencies(self) -> list[_CommentedFile]:
        """The files it imports, wrapped alike."""
        return [_CommentedFile(d, self._sources) for d in self._descriptor.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        """Copy the file into `proto`, comments included when we have them."""
        source = self._sources.get(self.name)
        if source is None:
            self._descriptor.CopyToProto(proto)
        else:
            proto.CopyFrom(source)


class CommentedPool:
    """A descriptor pool whose file lookups return `_CommentedFile`s."""

    def __init__(
        self,
        pool: descriptor_pool.DescriptorPool,
        sources: Mapping[str, descriptor_pb2.FileDescriptorProto],
    ) -> None:
        self._pool = pool
        self._sources = sources

    def FindFileByName(self, name: str) -> _CommentedFile:
        """Find a file by name."""
        return _CommentedFile(self._pool.FindFileByName(name), self._sources)

    def FindFileContainingSymbol(self, symbol: str) -> _CommentedFile:
        """Find the file that defines a fully qualified symbol."""
        return _CommentedFile(self._pool.FindFileContainingSymbol(symbol), self._sources)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection for `service_names` (plus reflection itself) with comments, on a
    grpc.aio server (or a `FramedServer`'s registrar for one)."""
    pool = CommentedPool(descriptor_pool.Default(), documented_files())
    servicer = reflection.aio.ReflectionServicer(
        (*service_names, reflection.SERVICE_NAME),
        # Duck-typed: grpcio-reflection only looks files and symbols up in its pool.
        pool=cast(descriptor_pool.DescriptorPool, pool),
    )
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
