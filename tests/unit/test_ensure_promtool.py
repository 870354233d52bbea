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


def run_script(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    """Run a copy of the script in a scratch project with fake apt tools on PATH."""
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
    calls = tmp_path / "calls"
    calls.touch()
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(project / "scripts" / "ensure_promtool.sh")],
        env={
            **os.environ,
            "PATH": f"{fakes}:/usr/bin:/bin",
            "CALLS": str(calls),
            "PACKAGE": str(package),
            "VG_SERVICES_IGNORE_SYSTEM": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines(), project


def test_promtool_alone_is_unpacked_into_the_project(tmp_path: Path) -> None:
    """apt updates and downloads `prometheus` with its lists and cache under .services/;
    only usr/bin/promtool is unpacked, under .services/root."""
    done, calls, project = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    services = project / ".services"
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
    first, _, _ = run_script(tmp_path)
    assert first.returncode == 0, first.stderr
    again, calls, _ = run_script_again(tmp_path)
    assert again.returncode == 0, again.stderr
    assert calls == []


def run_script_again(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    """Run the scratch project's script once more, recording calls afresh."""
    calls = tmp_path / "calls"
    calls.write_text("")
    project = tmp_path / "project"
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(project / "scripts" / "ensure_promtool.sh")],
        env={
            **os.environ,
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "CALLS": str(calls),
            "VG_SERVICES_IGNORE_SYSTEM": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines(), project
