"""The checked-in gRPC stubs are exactly what scripts/gen_protos.py generates from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = Path("gateway", "api")


def _files(root: Path) -> dict[str, bytes]:
    """Map each generated file below `root` (caches aside) to its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted((root / GENERATED).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_checked_in_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    """Regenerating into a temporary directory reproduces every checked-in stub byte for byte."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    fresh, checked_in = _files(tmp_path), _files(ROOT)
    assert fresh, "the generator wrote nothing"
    assert sorted(checked_in) == sorted(fresh), "run: python scripts/gen_protos.py"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale stubs {stale}: run python scripts/gen_protos.py"
