"""The gRPC contract: `buf lint` clean with only the listed exceptions, no breaking change
against the released API, and a reference page as fresh as the stubs.

buf is the binary the dev lock installs beside the interpreter (PyPI package buf-bin); each
buf run costs about a second, so each check runs it once per module, not once per test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "buf.yaml"
PROTO = Path("protos", "gateway", "api", "v1", "vehicle_gateway.proto")
RELEASED = ROOT / "protos" / "released" / "vehiclegateway-v1.json"

Finding = dict[str, Any]


def _buf() -> str:
    found = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if found is None:
        pytest.fail("buf not found: install the dev extras (requirements/dev.txt has buf-bin)")
    return found


@pytest.fixture(scope="module")
def buf(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., list[Finding]]:
    """Run buf in a workspace (the repository by default); return its JSON findings."""
    env = {**os.environ, "BUF_CACHE_DIR": str(tmp_path_factory.mktemp("buf-cache"))}
    binary = _buf()

    def run(*args: str, cwd: Path = ROOT, expect: int | None = None) -> list[Finding]:
        done = subprocess.run(
            [binary, *args, "--error-format=json"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if expect is not None:
            assert done.returncode == expect, done.stdout + done.stderr
        assert "Failure" not in done.stderr, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    return run


def _workspace(tmp_path: Path) -> Path:
    """Copy buf.yaml and the .proto files into `tmp_path`; return it."""
    shutil.copy(CONFIG, tmp_path / "buf.yaml")
    for proto in (ROOT / "protos").rglob("*.proto"):
        target = tmp_path / proto.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(proto, target)
    return tmp_path


UNPREFIXED_ENUM = """
// Added.
enum Colour {
  // Not set.
  COLOUR_UNSPECIFIED = 0;
  // Red, without the enum's prefix.
  RED = 1;
}
"""
PING_MESSAGES = """
// Added.
message PingRequest {}

// Added.
message PingResponse {}
"""


def _append(workspace: Path, text: str) -> None:
    """Append declarations to the workspace's contract."""
    path = workspace / PROTO
    path.write_text(path.read_text() + text)


def _edit(workspace: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in the workspace's contract."""
    path = workspace / PROTO
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------------------------------
# buf lint: its exceptions, and the elements each covers


def _exceptions(config: str) -> dict[str, set[str]]:
    """Map each rule under `lint.ignore_only` to the elements its `# exempt:` lines name."""
    exempt: dict[str, set[str]] = {}
    pending: set[str] = set()
    for line in _ignore_only_block(config)[1:]:
        comment = re.match(r"\s*# exempt:(.*)", line)
        rule = re.match(r" {4}([A-Z_]+):\s*$", line)
        if comment:
            pending |= set(comment[1].split())
        elif rule:
            exempt[rule[1]], pending = pending, set()
    return exempt


def _ignore_only_block(config: str) -> list[str]:
    """Return the lines of `lint.ignore_only`, its key first."""
    lines = config.splitlines()
    start = lines.index("  ignore_only:")
    end = next(
        i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith("    ")
    )
    return lines[start:end]


def _without_exceptions(config: str) -> str:
    """Return buf.yaml without its `lint.ignore_only` block."""
    block = _ignore_only_block(config)
    return config.replace("\n".join(block) + "\n", "")


def _element(finding: Finding, workspace: Path) -> str:
    """Name what a lint finding is about, as the `# exempt:` lines name it: the file for
    PACKAGE_DIRECTORY_MATCH, the enum for ENUM_VALUE_PREFIX, else the service, RPC,
    message or enum declared on the finding's line (else its position)."""
    path = finding["path"]
    if finding["type"] == "PACKAGE_DIRECTORY_MATCH":
        return Path(path).relative_to("protos").as_posix()
    lines = (workspace / path).read_text().splitlines()[: finding["start_line"]]
    if finding["type"] == "ENUM_VALUE_PREFIX":  # an enum's body holds values only
        enums = [m[1] for m in (re.match(r"\s*enum\s+(\w+)", line) for line in lines) if m]
        return enums[-1]
    declared = re.search(r"\b(?:service|rpc|message|enum)\s+(\w+)", lines[-1])
    return declared[1] if declared else f"{path}:{finding['start_line']}"


def _unexempt(findings: list[Finding], workspace: Path) -> list[str]:
    """Return the findings no `# exempt:` line covers, as `RULE element: message`."""
    exempt = _exceptions(CONFIG.read_text())
    return [
        f"{f['type']} {_element(f, workspace)}: {f['message']}"
        for f in findings
        if _element(f, workspace) not in exempt.get(f["type"], set())
    ]


@pytest.fixture(scope="module")
def findings_without_exceptions(buf: Callable[..., list[Finding]]) -> list[Finding]:
    """Every finding buf lint reports on the contract when buf.yaml exempts nothing."""
    return buf("lint", "--config", _without_exceptions(CONFIG.read_text()))


def test_buf_lint_is_clean(buf: Callable[..., list[Finding]]) -> None:
    """`buf lint` with the committed buf.yaml reports nothing."""
    assert buf("lint", expect=0) == []


def test_each_lint_exception_covers_only_its_listed_elements(
    findings_without_exceptions: list[Finding],
) -> None:
    """Without buf.yaml's exceptions every finding is about an element an `# exempt:` line
    names: ignore_only exempts the whole file, these lists keep new elements to the rules."""
    assert findings_without_exceptions, "expected the exempt v1 names to be reported"
    assert _unexempt(findings_without_exceptions, ROOT) == []


def test_every_listed_exemption_is_still_needed(
    findings_without_exceptions: list[Finding],
) -> None:
    """Each rule in ignore_only, and each element it lists, still has a finding: a stale
    exemption would let a new element with that name through unchecked."""
    reported: dict[str, set[str]] = {}
    for finding in findings_without_exceptions:
        reported.setdefault(finding["type"], set()).add(_element(finding, ROOT))
    exempt = _exceptions(CONFIG.read_text())
    assert all(exempt.values()), f"a rule without `# exempt:` elements: {exempt}"
    stale = {rule: names - reported.get(rule, set()) for rule, names in exempt.items()}
    assert {rule: names for rule, names in stale.items() if names} == {}


def test_every_lint_exception_says_why() -> None:
    """Each ignore_only rule is preceded by a comment explaining it, beyond its list."""
    block = _ignore_only_block(CONFIG.read_text())
    why: list[str] = []
    for line in block[1:]:
        if re.match(r" {4}([A-Z_]+):", line):
            assert why, f"no comment says why {line.strip()} is exempt"
            why = []
        elif line.strip().startswith("#") and "# exempt:" not in line:
            why.append(line)


def test_a_new_rpc_or_enum_must_follow_the_lint_rules(
    buf: Callable[..., list[Finding]], tmp_path: Path
) -> None:
    """An RPC answering a shared message, or an enum whose values lack its prefix, added to
    the contract is reported although the file is exempt from those rules."""
    workspace = _workspace(tmp_path)
    _edit(
        workspace,
        "service VehicleGateway {\n",
        "service VehicleGateway {\n  // Added.\n  rpc Ping(GetVehicleRequest) returns (Vehicle);\n",
    )
    _append(workspace, UNPREFIXED_ENUM)
    findings = buf("lint", "--config", _without_exceptions(CONFIG.read_text()), cwd=workspace)
    unexempt = _unexempt(findings, workspace)
    assert any(line.startswith("RPC_REQUEST_STANDARD_NAME Ping") for line in unexempt)
    assert any(line.startswith("RPC_RESPONSE_STANDARD_NAME Ping") for line in unexempt)
    assert any(line.startswith("RPC_REQUEST_RESPONSE_UNIQUE Ping") for line in unexempt)
    assert any(line.startswith("ENUM_VALUE_PREFIX Colour") for line in unexempt)


# ---------------------------------------------------------------------------------------
# buf breaking against the released API

BREAKING_EDITS = {
    "FIELD_NO_DELETE": ("  string vin = 2;\n}", "  string vin = 3;\n}"),  # renumbered
    "ENUM_VALUE_SAME_NAME": ("  ODOMETER = 2;", "  TELEMETRY_FIELD_ODOMETER = 2;"),
    "FIELD_SAME_TYPE": ("  int32 monthly_allowance = 2;", "  int64 monthly_allowance = 2;"),
    "FIELD_SAME_NAME": (
        "  string state = 3;\n  // The `user_id`",
        "  string nonce = 3;\n  // The `user_id`",
    ),
    "RPC_NO_DELETE": (
        "  rpc GetVehicle(GetVehicleRequest) returns (Vehicle);\n",
        "",
    ),
}
"""A breaking edit of the contract per rule that must name it."""


def test_the_contract_keeps_the_released_api(buf: Callable[..., list[Finding]]) -> None:
    """`buf breaking` finds nothing between protos/ and the released v1 image."""
    assert buf("breaking", "--against", str(RELEASED), expect=0) == []


@pytest.fixture(scope="module")
def breaking_findings(
    buf: Callable[..., list[Finding]], tmp_path_factory: pytest.TempPathFactory
) -> list[Finding]:
    """What `buf breaking` reports on a copy of the contract with every breaking edit."""
    workspace = _workspace(tmp_path_factory.mktemp("broken"))
    for old, new in BREAKING_EDITS.values():
        _edit(workspace, old, new)
    return buf("breaking", "--against", str(RELEASED), cwd=workspace, expect=100)


@pytest.mark.parametrize("rule", sorted(BREAKING_EDITS))
def test_a_breaking_edit_fails_naming_its_rule(breaking_findings: list[Finding], rule: str) -> None:
    """Renumbering, retyping or renaming a field, renaming an enum value and deleting an
    RPC each fail buf breaking, with the rule named."""
    assert rule in {finding["type"] for finding in breaking_findings}


def test_adding_fields_messages_and_rpcs_is_not_breaking(
    buf: Callable[..., list[Finding]], tmp_path: Path
) -> None:
    """A new field with a new number, a new enum value, and a new RPC with its own messages
    pass buf breaking."""
    workspace = _workspace(tmp_path)
    _edit(
        workspace, "  string vin = 2;\n}", "  string vin = 2;\n  // Added.\n  string note = 3;\n}"
    )
    _edit(workspace, "  CHARGE = 8;\n", "  CHARGE = 8;\n  // Added.\n  ADDED = 9;\n")
    _edit(
        workspace,
        "service VehicleGateway {\n",
        "service VehicleGateway {\n  // Added.\n  rpc Ping(PingRequest) returns (PingResponse);\n",
    )
    _append(workspace, PING_MESSAGES)
    assert buf("breaking", "--against", str(RELEASED), cwd=workspace, expect=0) == []


# ---------------------------------------------------------------------------------------
# The reference page


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_api_reference", ROOT / "scripts" / "gen_api_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh_reference() -> str:
    """docs/api-reference.md as scripts/gen_api_reference.py makes it now."""
    generator = _generator()
    page: str = generator.render(generator.descriptor_set())
    return page


def test_the_api_reference_is_fresh(fresh_reference: str) -> None:
    """The committed docs/api-reference.md is what the generator makes from protos/."""
    committed = (ROOT / "docs" / "api-reference.md").read_text(encoding="utf-8")
    assert committed == fresh_reference, "stale: run python scripts/gen_api_reference.py"


def test_the_api_reference_covers_every_rpc_message_and_enum(fresh_reference: str) -> None:
    """Each RPC, message and enum of the contract has its own section."""
    from gateway.api.v1 import vehicle_gateway_pb2 as pb

    file = pb.DESCRIPTOR
    headings = set(re.findall(r"^#### (.+)$", fresh_reference, flags=re.MULTILINE))
    expected = {f"rpc {m.name}" for s in file.services_by_name.values() for m in s.methods}
    expected |= {f"message {name}" for name in file.message_types_by_name}
    expected |= {f"enum {name}" for name in file.enum_types_by_name}
    assert expected - headings == set()


SAMPLE = """syntax = "proto3";
package sample.v1;

// Says hello.
service SampleService {
  // Streams greetings both ways.
  rpc Chat(stream ChatRequest) returns (stream ChatResponse) {
    option deprecated = true;
  }
}

// What a caller says.
message ChatRequest {
  reserved 4, 6 to 8;
  reserved "old";
  // Who speaks.
  string name = 1 [deprecated = true];
  // Counts by key.
  map<string, int32> counts = 2;
  // A part | with a pipe and <angle> brackets.
  Inner inner = 3;
  // Nested.
  message Inner {
    // Its mood.
    Mood mood = 1;
  }
  // How it feels.
  enum Mood {
    reserved 5;
    // Not set.
    MOOD_UNSPECIFIED = 0;
    // Fine.
    MOOD_FINE = 1 [deprecated = true];
  }
}

// What comes back.
message ChatResponse {}
"""


def test_the_reference_shows_streams_deprecation_reserved_maps_and_nesting(
    tmp_path: Path,
) -> None:
    """The generator renders what the contract does not use yet but may: streaming requests,
    deprecated RPCs, fields and values, reserved numbers and names, maps, nested types."""
    (tmp_path / "sample.proto").write_text(SAMPLE)
    generator = _generator()
    page: str = generator.render(generator.descriptor_set(tmp_path))
    assert "- request: a stream of [`ChatRequest`](#message-chatrequest)" in page
    assert "- response: a stream of [`ChatResponse`](#message-chatresponse)" in page
    rpc = page.split("#### rpc Chat", 1)[1]
    assert rpc.split("####", 1)[0].count("**Deprecated.**") == 1
    assert "| 1 | `name` | `name` | `string` |  | **Deprecated.** Who speaks. |" in page
    assert "| 2 | `counts` | `counts` | map&lt;`string`, `int32`&gt; |  | Counts by key. |" in page
    assert "A part \\| with a pipe and &lt;angle&gt; brackets." in page
    assert "Reserved (never to be reused): 4, 6-8, `old`." in page
    assert "#### message ChatRequest.Inner" in page
    assert "[`ChatRequest.Mood`](#enum-chatrequestmood)" in page
    assert "| 1 | `MOOD_FINE` | **Deprecated.** Fine. |" in page
    assert "Reserved (never to be reused): 5." in page


def test_the_readme_links_the_reference_and_the_versioning_policy() -> None:
    """The README points callers to the reference and the versioning policy."""
    readme = (ROOT / "README.md").read_text()
    assert "docs/api-reference.md" in readme
    assert "docs/api-versioning.md" in readme
    assert (ROOT / "docs" / "api-versioning.md").is_file()
