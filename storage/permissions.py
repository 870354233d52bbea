"""Owner-only permissions for the gateway's state: directories 0700, files 0600.

VG_VAR_DIR holds the SQLite database (locations, VINs, the audit trail), its -wal and -shm
files and the development key: nobody but the gateway's own user may read them.
`secure_tree` runs at start-up: it creates the directory 0700 when missing, and takes the
group and other bits off everything already under it that has them (files made by an
older version, or copied in), returning what it changed so the caller can warn about each.
`secure_file` does the same for one file (the database, wherever VG_DATABASE_URL puts it).
Symbolic links are never followed, and a path owned by another user (which only its owner
may chmod) is left as it is.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


@dataclass(frozen=True, slots=True)
class Tightened:
    """A path whose permissions were too open: its mode before and after."""

    path: Path
    before: int
    after: int


def secure_tree(root: Path) -> list[Tightened]:
    """Create `root` (0700) when missing; otherwise take group/other permissions off it
    and everything under it. Return every path changed."""
    if not root.exists():
        root.mkdir(mode=DIRECTORY_MODE, parents=True)
        os.chmod(root, DIRECTORY_MODE)  # mkdir's mode is subject to the umask
        return []
    changed = [t for t in (_tighten(root),) if t is not None]
    for directory, subdirectories, files in os.walk(root):
        for name in (*subdirectories, *files):
            tightened = _tighten(Path(directory) / name)
            if tightened is not None:
                changed.append(tightened)
    return changed


def secure_file(path: Path) -> Tightened | None:
    """Take group/other permissions off `path` if it exists; return the change, if any."""
    return _tighten(path)


def _tighten(path: Path) -> Tightened | None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode) or not mode & _OPEN_TO_OTHERS:
        return None
    before = stat.S_IMODE(mode)
    after = before & ~_OPEN_TO_OTHERS
    if stat.S_ISDIR(mode):
        after |= DIRECTORY_MODE
    try:
        os.chmod(path, after)
    except PermissionError:  # another user's file: not ours to change
        return None
    return Tightened(path=path, before=before, after=after)
