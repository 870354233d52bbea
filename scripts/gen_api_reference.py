"""Generate docs/api-reference.md, the gRPC API's reference, from the comments in protos/.

    python scripts/gen_api_reference.py          # rewrite docs/api-reference.md
    python scripts/gen_api_reference.py --check  # exit 1, saying so, when it is stale

The descriptors, comments included, come from grpcio-tools' bundled protoc with
`--include_source_info`, as scripts/gen_protos.py builds them for server reflection; whether
an RPC is audited comes from `gateway.core.audit.AUDITED_METHODS`. The page covers every
service and RPC (request, response, streaming, comment), every message (each field's number,
JSON name, type, label, comment, deprecation; reserved numbers and names) and every enum and
value, in the order the .proto declares them. The output depends only on the .proto files
and that set; nothing here adds dates or paths. tests/unit/test_api_contract.py fails when
the committed page differs from a fresh one.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from gateway.core.audit import AUDITED_METHODS

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
REFERENCE = ROOT / "docs" / "api-reference.md"

FieldType = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    FieldType.TYPE_DOUBLE: "double",
    FieldType.TYPE_FLOAT: "float",
    FieldType.TYPE_INT64: "int64",
    FieldType.TYPE_UINT64: "uint64",
    FieldType.TYPE_INT32: "int32",
    FieldType.TYPE_FIXED64: "fixed64",
    FieldType.TYPE_FIXED32: "fixed32",
    FieldType.TYPE_BOOL: "bool",
    FieldType.TYPE_STRING: "string",
    FieldType.TYPE_BYTES: "bytes",
    FieldType.TYPE_UINT32: "uint32",
    FieldType.TYPE_SFIXED32: "sfixed32",
    FieldType.TYPE_SFIXED64: "sfixed64",
    FieldType.TYPE_SINT32: "sint32",
    FieldType.TYPE_SINT64: "sint64",
}

# Field numbers of the descriptor messages, as source-info paths use them.
_FILE_PACKAGE, _FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_SYNTAX = 2, 4, 5, 6, 12
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

_ACCESS = (
    "Who may call each RPC is the deployment's access policy (`VG_ACCESS_POLICY`, see the "
    "README's *Callers and access*): a role lists the RPCs it allows by their short names, the "
    "headings below. For GetTelemetry a role also lists the telemetry fields it may read "
    "(`telemetry_fields`); the rental RPCs leave out readings of other fields, and "
    "WatchVehicleEvents the events that would show them. An RPC marked *audited* is recorded "
    "in the audit trail (caller, vehicle, request id, outcome), failed calls included."
)


def descriptor_set(root: Path = PROTOS) -> descriptor_pb2.FileDescriptorSet:
    """Compile every .proto under `root` (protos/) into a descriptor set with its comments."""
    protos = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.proto"))
    well_known = resources.files("grpc_tools").joinpath("_proto")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "set.binpb")
        args = [f"-I{root}", f"-I{well_known}", f"--descriptor_set_out={out}"]
        if protoc.main(["grpc_tools.protoc", *args, "--include_source_info", *protos]) != 0:
            raise SystemExit("protoc failed")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def render(files: descriptor_pb2.FileDescriptorSet) -> str:
    """Return the reference page for the descriptor set's files."""
    lines = [
        "# API reference",
        "",
        "<!-- Generated from protos/ by scripts/gen_api_reference.py: do not edit. -->",
        "",
        "The gRPC contract of vehicle-gateway, generated from the comments in the .proto "
        "files. How it changes, and for how long a deprecated element and a superseded "
        "version are served: [api-versioning.md](api-versioning.md).",
    ]
    for file in files.file:
        lines += _File(file).render()
    return "\n".join(lines).rstrip() + "\n"


@dataclass(frozen=True)
class _Names:
    """Where each type of the package has its section."""

    package: str
    anchors: dict[str, str]

    def link(self, type_name: str) -> str:
        """Return a type reference as Markdown: a link for the package's own types."""
        anchor = self.anchors.get(type_name)
        short = type_name.removeprefix(f".{self.package}.").lstrip(".")
        return f"[`{short}`](#{anchor})" if anchor else f"`{short}`"


class _File:
    """One .proto file and its comments, rendered as Markdown."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file = file
        self.comments = {
            tuple(location.path): location for location in file.source_code_info.location
        }
        anchors: dict[str, str] = {}
        for full, _, _ in self._messages():
            anchors[full] = _anchor(f"message {self._short(full)}")
        for full, _, _ in self._enums():
            anchors[full] = _anchor(f"enum {self._short(full)}")
        self.names = _Names(file.package, anchors)

    def render(self) -> list[str]:
        """Return the file's section: overview, services, messages, enums."""
        file = self.file
        lines = ["", f"## Package `{file.package}`", "", f"File `protos/{file.name}`."]
        lines += _paragraphs(self._comment((_FILE_SYNTAX,)) or self._comment((_FILE_PACKAGE,)))
        lines += ["", "Contents:", ""]
        for service in file.service:
            lines.append(f"- service [`{service.name}`](#{_anchor(f'service {service.name}')})")
            for method in service.method:
                lines.append(f"  - [`{method.name}`](#{_anchor(f'rpc {method.name}')})")
        lines.append("- messages: " + ", ".join(self._toc(self._messages())))
        lines.append("- enums: " + ", ".join(self._toc(self._enums())))
        for index, service in enumerate(file.service):
            lines += self._service(service, (_FILE_SERVICE, index))
        lines += ["", "### Messages"]
        for full, path, message in self._messages():
            lines += self._message(full, path, message)
        lines += ["", "### Enums"]
        for full, path, enum in self._enums():
            lines += self._enum(full, path, enum)
        return lines

    def _short(self, full: str) -> str:
        """Return a type's name within the package (`Outer.Inner` for a nested one)."""
        return full.removeprefix(f".{self.file.package}.")

    def _toc(self, entries: Iterable[tuple[str, object, object]]) -> Iterator[str]:
        for full, _, _ in entries:
            yield self.names.link(full)

    def _comment(self, path: tuple[int, ...]) -> str:
        location = self.comments.get(path)
        if location is None:
            return ""
        text = "\n".join(part for part in (location.leading_comments, location.trailing_comments))
        return "\n".join(line.removeprefix(" ") for line in text.strip("\n").split("\n"))

    def _service(
        self, service: descriptor_pb2.ServiceDescriptorProto, path: tuple[int, ...]
    ) -> list[str]:
        full = f"{self.file.package}.{service.name}"
        lines = ["", f"### service {service.name}", "", f"Full name `{full}`."]
        lines += _deprecated(service.options.deprecated)
        lines += _paragraphs(self._comment(path))
        lines += ["", _ACCESS]
        for index, method in enumerate(service.method):
            lines += self._method(full, method, (*path, _SERVICE_METHOD, index))
        return lines

    def _method(
        self, service: str, method: descriptor_pb2.MethodDescriptorProto, path: tuple[int, ...]
    ) -> list[str]:
        request, response = self.names.link(method.input_type), self.names.link(method.output_type)
        if method.client_streaming:
            request = f"a stream of {request}"
        if method.server_streaming:
            response = f"a stream of {response}"
        audited = "yes" if method.name in AUDITED_METHODS else "no"
        lines = [
            "",
            f"#### rpc {method.name}",
            "",
            f"- method: `/{service}/{method.name}`",
            f"- request: {request}",
            f"- response: {response}",
            f"- audited: {audited}",
        ]
        lines += _deprecated(method.options.deprecated)
        return lines + _paragraphs(self._comment(path))

    def _messages(self) -> Iterator[tuple[str, tuple[int, ...], descriptor_pb2.DescriptorProto]]:
        """Yield every message (nested ones after their parent) with its source path."""

        def walk(
            prefix: str, messages: Sequence[descriptor_pb2.DescriptorProto], path: tuple[int, ...]
        ) -> Iterator[tuple[str, tuple[int, ...], descriptor_pb2.DescriptorProto]]:
            for index, message in enumerate(messages):
                if message.options.map_entry:
                    continue
                full, here = f"{prefix}.{message.name}", (*path, index)
                yield full, here, message
                yield from walk(full, message.nested_type, (*here, _MESSAGE_NESTED))

        yield from walk(f".{self.file.package}", self.file.message_type, (_FILE_MESSAGE,))

    def _enums(self) -> Iterator[tuple[str, tuple[int, ...], descriptor_pb2.EnumDescriptorProto]]:
        """Yield every enum, top-level ones first, then those nested in messages."""
        package = f".{self.file.package}"
        for index, enum in enumerate(self.file.enum_type):
            yield f"{package}.{enum.name}", (_FILE_ENUM, index), enum
        for full, path, message in self._messages():
            for index, enum in enumerate(message.enum_type):
                yield f"{full}.{enum.name}", (*path, _MESSAGE_ENUM, index), enum

    def _message(
        self, full: str, path: tuple[int, ...], message: descriptor_pb2.DescriptorProto
    ) -> list[str]:
        lines = ["", f"#### message {self._short(full)}"]
        lines += _deprecated(message.options.deprecated)
        lines += _paragraphs(self._comment(path))
        if message.field:
            lines += [
                "",
                "| # | field | JSON name | type | label | description |",
                "|---:|---|---|---|---|---|",
            ]
        for index, field in enumerate(message.field):
            comment = self._comment((*path, _MESSAGE_FIELD, index))
            if field.options.deprecated:
                comment = f"**Deprecated.** {comment}"
            lines.append(
                f"| {field.number} | `{field.name}` | `{field.json_name}` | "
                f"{self._type(field, message)} | {_label(field, message)} | {_cell(comment)} |"
            )
        lines += _reserved(
            [(r.start, r.end - 1) for r in message.reserved_range], message.reserved_name
        )
        return lines

    def _type(
        self, field: descriptor_pb2.FieldDescriptorProto, message: descriptor_pb2.DescriptorProto
    ) -> str:
        if field.type in _SCALARS:
            return f"`{_SCALARS[field.type]}`"
        entry = _map_entry(field, message)
        if entry is not None:
            key, value = entry.field
            return f"map&lt;{self._type(key, entry)}, {self._type(value, entry)}&gt;"
        return self.names.link(field.type_name)

    def _enum(
        self, full: str, path: tuple[int, ...], enum: descriptor_pb2.EnumDescriptorProto
    ) -> list[str]:
        lines = ["", f"#### enum {self._short(full)}"]
        lines += _deprecated(enum.options.deprecated)
        lines += _paragraphs(self._comment(path))
        lines += ["", "| number | name | description |", "|---:|---|---|"]
        for index, value in enumerate(enum.value):
            comment = self._comment((*path, _ENUM_VALUE, index))
            if value.options.deprecated:
                comment = f"**Deprecated.** {comment}"
            lines.append(f"| {value.number} | `{value.name}` | {_cell(comment)} |")
        return lines + _reserved(
            [(r.start, r.end) for r in enum.reserved_range], enum.reserved_name
        )


def _map_entry(
    field: descriptor_pb2.FieldDescriptorProto, message: descriptor_pb2.DescriptorProto
) -> descriptor_pb2.DescriptorProto | None:
    """Return the map entry type of a map field, else None."""
    if field.label != FieldType.LABEL_REPEATED or field.type != FieldType.TYPE_MESSAGE:
        return None
    name = field.type_name.rsplit(".", 1)[-1]
    for nested in message.nested_type:
        if nested.name == name and nested.options.map_entry:
            return nested
    return None


def _label(
    field: descriptor_pb2.FieldDescriptorProto, message: descriptor_pb2.DescriptorProto
) -> str:
    """Return how a field is held: repeated, optional (explicit presence), in a oneof, or ''."""
    if _map_entry(field, message) is not None:
        return ""
    if field.label == FieldType.LABEL_REPEATED:
        return "repeated"
    if field.proto3_optional:
        return "optional"
    if field.HasField("oneof_index"):
        return f"oneof `{message.oneof_decl[field.oneof_index].name}`"
    return ""


def _reserved(ranges: list[tuple[int, int]], names: Sequence[str]) -> list[str]:
    """Return the line naming reserved numbers (inclusive ranges) and names, if any."""
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
    parts += [f"`{name}`" for name in names]
    return ["", f"Reserved (never to be reused): {', '.join(parts)}."] if parts else []


def _deprecated(deprecated: bool) -> list[str]:
    return ["", "**Deprecated.**"] if deprecated else []


_CODE_SPAN = re.compile(r"(`[^`]*`)")


def _escape(text: str) -> str:
    """Escape what Markdown would take for HTML outside code spans."""
    return "".join(
        part if part.startswith("`") else part.replace("<", "&lt;").replace(">", "&gt;")
        for part in _CODE_SPAN.split(text)
    )


def _paragraphs(comment: str) -> list[str]:
    """Return a comment as Markdown paragraphs: its lines joined, blank lines kept."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", comment.strip()):
        if paragraph:
            lines += ["", _escape(" ".join(line.strip() for line in paragraph.split("\n")))]
    return lines


def _cell(comment: str) -> str:
    """Return a comment as one table cell."""
    return _escape(" ".join(comment.split())).replace("|", "\\|")


def _anchor(heading: str) -> str:
    """Return the anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/api-reference.md, or with --check say whether it is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the page is stale")
    args = parser.parse_args(argv)
    page = render(descriptor_set())
    if args.check:
        if REFERENCE.exists() and REFERENCE.read_text(encoding="utf-8") == page:
            return 0
        print(f"{REFERENCE.relative_to(ROOT)} is stale: run {Path(__file__).name}")  # noqa: T201
        return 1
    REFERENCE.write_text(page, encoding="utf-8")
    print(REFERENCE.relative_to(ROOT))  # noqa: T201 - a command-line tool reports its work
    return 0


if __name__ == "__main__":
    sys.exit(main())
