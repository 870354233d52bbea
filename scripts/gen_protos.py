"""Regenerate the Python stubs of the gRPC contract from protos/.

    python scripts/gen_protos.py            # rewrite the checked-in stubs
    python scripts/gen_protos.py --out DIR  # write them under DIR instead (the stale test)

Messages and services come from grpcio-tools' bundled protoc (`--python_out`,
`--grpc_python_out`), type stubs from mypy-protobuf (`--mypy_out`, `--mypy_grpc_out`), and
`gateway/api/descriptor_set.py` holds the descriptors with their comments, for reflection. Every
.proto under protos/ is compiled with protos/ as the include root, so a file at
protos/gateway/api/v1/x.proto becomes the package module `gateway.api.v1.x_pb2`. The output
depends only on the .proto files and the tool versions; nothing here adds dates or paths.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
import textwrap
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_PACKAGE = Path("gateway", "api")
"""Where the stubs land, relative to the output root; the whole folder is generated."""

_INIT = '"""Generated from protos/ by scripts/gen_protos.py: do not edit."""\n'

_DESCRIPTOR_SET = '''"""Generated from protos/ by scripts/gen_protos.py: do not edit.

The contract's serialized `google.protobuf.FileDescriptorSet` with source info (comments),
which the generated `_pb2` modules leave out; server reflection serves it so that
`grpcurl describe` shows the documentation.
"""

import base64

FILE_DESCRIPTOR_SET: bytes = base64.b64decode(
{chunks}
)
'''


def _plugin(name: str) -> str:
    """Return the path of a protoc plugin installed beside this interpreter."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extras (mypy-protobuf)")
    return found


def generate(out: Path) -> list[Path]:
    """Write the stubs of every .proto under protos/ below `out`; return the files written."""
    protos = sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))
    well_known = resources.files("grpc_tools").joinpath("_proto")
    target = out / GENERATED_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    args = [
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *protos,
    ]
    _protoc(args)
    _write_descriptor_set(target / "descriptor_set.py", [f"-I{PROTOS}", f"-I{well_known}"], protos)
    for package in (target, *(p for p in target.rglob("*") if p.is_dir())):
        (package / "__init__.py").write_text(_INIT)
    return sorted(p for p in target.rglob("*") if p.is_file())


def _protoc(args: list[str]) -> None:
    """Run the bundled protoc, failing loudly."""
    if protoc.main(["grpc_tools.protoc", *args]) != 0:
        raise SystemExit("protoc failed")


def _write_descriptor_set(path: Path, includes: list[str], protos: list[str]) -> None:
    """Write the protos' FileDescriptorSet, comments included, as a Python module."""
    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch, "set.binpb")
        _protoc([*includes, f"--descriptor_set_out={binary}", "--include_source_info", *protos])
        encoded = base64.b64encode(binary.read_bytes()).decode()
    chunks = "\n".join(f'    "{line}"' for line in textwrap.wrap(encoded, 88))
    path.write_text(_DESCRIPTOR_SET.format(chunks=chunks))


def main(argv: list[str] | None = None) -> int:
    """Regenerate the stubs (into the repository, or --out) and list what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: repo)")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    for path in generate(out):
        print(path.relative_to(out))  # noqa: T201 - a command-line tool reports its work
    return 0


if __name__ == "__main__":
    sys.exit(main())
