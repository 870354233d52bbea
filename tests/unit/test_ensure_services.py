"""scripts/ensure_services.sh: what the machine lacks is unpacked into the project's own
.services/, with apt's lists and downloads there too; nothing is installed system-wide.

apt-get and dpkg-deb are replaced by recording fakes on PATH, so the test runs offline and
sees every call the script makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure_services.sh"

FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$CALLS"
case " $* " in
  *" --simulate "*)
    echo "Inst postgresql-common [247] (248 Debian:12 [all])"   # an upgrade: left alone
    echo "Inst libjemalloc2 (5.3.0-1 Debian:12 [amd64])"
    echo "Inst redis-server (5:7.0.15-1 Debian:12 [amd64])"
    echo "Inst faketime (0.9.10-2.1 Debian:12 [amd64])"
    ;;
  *" download "*)
    for word in "$@"; do
      case "$word" in -*|download|*=*|Dir::*|Debug::*|APT::*) ;; *) : > "$word.deb" ;; esac
    done
    ;;
esac
"""

FAKE_DPKG_DEB = """#!/bin/sh
echo "dpkg-deb $*" >> "$CALLS"
mkdir -p "$3/usr/bin"
: > "$3/usr/bin/$(basename "$2" .deb)"
chmod +x "$3/usr/bin/$(basename "$2" .deb)"
"""


def run_script(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    """Run a copy of the script in a scratch project with fake apt tools on PATH."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "ensure_services.sh")
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, body in (("apt-get", FAKE_APT_GET), ("dpkg-deb", FAKE_DPKG_DEB)):
        (fakes / name).write_text(body)
        (fakes / name).chmod(0o755)
    calls = tmp_path / "calls"
    environment = {
        **os.environ,
        "PATH": f"{fakes}:/usr/bin:/bin",
        "CALLS": str(calls),
        "VG_SERVICES_IGNORE_SYSTEM": "1",
    }
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(project / "scripts" / "ensure_services.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines(), project


def test_missing_programs_are_unpacked_into_the_project_and_nothing_is_installed(
    tmp_path: Path,
) -> None:
    """apt only simulates an install and downloads (its lists, cache and status under
    .services/); each missing package, not an upgrade, is unpacked under .services/root."""
    done, calls, project = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    services = project / ".services"
    apt_calls = [call for call in calls if call.startswith("apt-get ")]
    assert apt_calls[0].split()[-2:] == ["update", "-qq"]
    for call in apt_calls:
        assert f"Dir::State::Lists={services}/apt/lists" in call
        assert f"Dir::Cache={services}/apt/cache" in call
        assert f"Dir::State::status={services}/apt/status" in call
    installs = [call for call in apt_calls if " install " in call]
    assert installs
    assert all("--simulate" in call for call in installs)
    downloads = [call for call in apt_calls if " download " in call]
    assert len(downloads) == 1
    assert downloads[0].split()[-3:] == ["libjemalloc2", "redis-server", "faketime"]
    assert (services / "root" / "usr" / "bin" / "redis-server").exists()
    assert all(call.split()[1] == "-x" for call in calls if call.startswith("dpkg-deb "))


def test_a_second_run_finds_everything_and_calls_nothing(tmp_path: Path) -> None:
    """Once unpacked, the programs are found in .services/: no apt call at all."""
    first, _, _ = run_script(tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "calls").unlink()
    project = tmp_path / "project"
    # What a real unpacking leaves for PostgreSQL and libfaketime (the fake leaves bin/ only).
    (project / ".services/root/usr/lib/postgresql/15/bin").mkdir(parents=True)
    (project / ".services/root/usr/lib/postgresql/15/bin/pg_ctl").touch()
    (project / ".services/root/usr/lib/x86_64-linux-gnu/faketime").mkdir(parents=True)
    (project / ".services/root/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1").touch()
    bash = shutil.which("bash")
    assert bash is not None
    again = subprocess.run(
        [bash, str(project / "scripts" / "ensure_services.sh")],
        env={**os.environ, "VG_SERVICES_IGNORE_SYSTEM": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "calls").exists()
