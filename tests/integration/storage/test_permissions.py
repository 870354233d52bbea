"""Owner-only state: secure_tree creates VG_VAR_DIR 0700 and takes group and other bits off
what is already there, without following links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from storage.permissions import Tightened, secure_tree


def mode(path: Path) -> int:
    """Return the permission bits of `path` (not following a link)."""
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_missing_var_dir_is_created_owner_only(tmp_path: Path) -> None:
    """A var dir that does not exist yet is created 0700, whatever the umask."""
    previous = os.umask(0o022)
    try:
        assert secure_tree(tmp_path / "var" / "nested") == []
    finally:
        os.umask(previous)
    assert mode(tmp_path / "var" / "nested") == 0o700


def test_open_paths_are_tightened_and_reported_and_links_left_alone(tmp_path: Path) -> None:
    """Directories become 0700 and files lose their group/other bits (0644 → 0600), each
    change reported with its modes; owner-only paths and a link's target are untouched."""
    var = tmp_path / "var"
    (var / "sub").mkdir(parents=True)
    var.chmod(0o755)
    (var / "sub").chmod(0o750)
    (var / "gateway.db").write_bytes(b"")
    (var / "gateway.db").chmod(0o644)
    (var / "key").write_bytes(b"")
    (var / "key").chmod(0o600)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"")
    outside.chmod(0o644)
    (var / "link").symlink_to(outside)

    changed = secure_tree(var)

    assert sorted(changed, key=lambda t: str(t.path)) == [
        Tightened(var, 0o755, 0o700),
        Tightened(var / "gateway.db", 0o644, 0o600),
        Tightened(var / "sub", 0o750, 0o700),
    ]
    assert mode(var / "key") == 0o600
    assert mode(outside) == 0o644
