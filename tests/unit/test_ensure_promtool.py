"""scripts/ensure_promtool.sh: promtool is taken out of Debian's prometheus package into the
project's own .services/, apt's lists and downloads there too; nothing else is unpacked and
nothing is installed system-wide.

apt-get and dpkg-deb are replaced by recording fakes on PATH, so the test runs offline and
sees every call the script makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure_promtool.sh"

FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$CALLS"
case " $* " in
  *" download "*) : > prometheus_2.42.0+ds-5_amd64.deb ;;
esac
"""

# The package's data as a tar stream: promtool, and the server beside it (left out).
FAKE_DPKG_DEB = """#!/bin/sh
echo "dpkg-deb $*" >> "$CALLS"
tar -c -C "$PACKAGE" ./usr/bin/promtool ./usr/bin/prometheus
"""

FAKE_PROMTOOL = """#!/bin/sh
echo "promtool, version 2.42.0+ds"
"""


def scratch_project(tmp_path: Path) -> Path:
    """A scratch project holding a copy of the script, fake apt tools and a fake package."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "ensure_promtool.sh")
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, body in (("apt-get", FAKE_APT_GET), ("dpkg-deb", FAKE_DPKG_DEB)):
        (fakes / name).write_text(body)
        (fakes / name).chmod(0o755)
    package = tmp_path / "package"
    (package / "usr" / "bin").mkdir(parents=True)
    for name in ("promtool", "prometheus"):
        (package / "usr" / "bin" / name).write_text(FAKE_PROMTOOL)
        (package / "usr" / "bin" / name).chmod(0o755)
    return project


def run_script(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the scratch project's script with the fakes first on PATH; return its outcome
    and the apt and dpkg calls it made."""
    calls = tmp_path / "calls"
    calls.write_text("")
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(tmp_path / "project" / "scripts" / "ensure_promtool.sh")],
        env={
            **os.environ,
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "CALLS": str(calls),
            "PACKAGE": str(tmp_path / "package"),
            "VG_SERVICES_IGNORE_SYSTEM": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines()


def test_promtool_alone_is_unpacked_into_the_project(tmp_path: Path) -> None:
    """apt updates and downloads `prometheus` with its lists and cache under .services/;
    only usr/bin/promtool is unpacked, under .services/root."""
    services = scratch_project(tmp_path) / ".services"
    done, calls = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    apt_calls = [call for call in calls if call.startswith("apt-get ")]
    assert [call.split()[-2:] for call in apt_calls] == [
        ["update", "-qq"],
        ["-qq", "prometheus"],
    ]
    for call in apt_calls:
        assert f"Dir::State::Lists={services}/apt/lists" in call
        assert f"Dir::Cache={services}/apt/cache" in call
        assert " install " not in call
    assert (services / "root" / "usr" / "bin" / "promtool").exists()
    assert not (services / "root" / "usr" / "bin" / "prometheus").exists()


def test_a_second_run_finds_promtool_and_calls_nothing(tmp_path: Path) -> None:
    """Once unpacked, promtool is found in .services/: no apt call at all."""
    scratch_project(tmp_path)
    first, _ = run_script(tmp_path)
    assert first.returncode == 0, first.stderr
    again, calls = run_script(tmp_path)
    assert again.returncode == 0, again.stderr
    assert calls == []
