#!/usr/bin/env bash
# Make promtool available to the test suite (tests/unit/test_alert_rules.py checks and
# unit-tests deploy/monitoring/alerts.yml with it).
#
# A promtool on the PATH is used as it is. Otherwise Debian's `prometheus` package (which
# ships promtool, a static Go binary needing nothing else) is downloaded into .services/
# (the project's own, git-ignored folder) the way scripts/ensure_services.sh fetches
# PostgreSQL, and only `usr/bin/promtool` is taken out of it: no maintainer script runs, the
# Prometheus server is neither installed nor started, its web assets' dependencies are not
# fetched, and no file outside the project is written — apt keeps its package lists and
# downloads under .services/apt. tests/services.py finds the binary in either place.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
services="$root_dir/.services"
unpacked="$services/root"
target="$unpacked/usr/bin/promtool"

if [ "${VG_SERVICES_IGNORE_SYSTEM:-}" != 1 ] && command -v promtool > /dev/null; then
    exit 0
fi
[ -x "$target" ] && exit 0

for tool in apt-get dpkg-deb tar; do
    if ! command -v "$tool" > /dev/null; then
        echo "ensure_promtool: promtool missing and $tool is not here (not Debian?): install promtool" >&2
        exit 1
    fi
done

echo "ensure_promtool: unpacking promtool from Debian's prometheus package into .services/" >&2
mkdir -p "$services/apt/lists/partial" "$services/apt/cache/archives/partial" \
    "$services/debs/promtool" "$unpacked"
apt_options=(
    -o "Dir::State::Lists=$services/apt/lists"
    -o "Dir::Cache=$services/apt/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=$(id -un)"
)
apt-get "${apt_options[@]}" update -qq
rm -f "$services"/debs/promtool/*.deb
(cd "$services/debs/promtool" && apt-get "${apt_options[@]}" download -qq prometheus)
debs=("$services"/debs/promtool/prometheus_*.deb)
if [ ! -f "${debs[0]}" ]; then
    echo "ensure_promtool: apt found no prometheus package to fetch" >&2
    exit 1
fi
dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$unpacked" ./usr/bin/promtool
"$target" --version > /dev/null
echo "ensure_promtool: unpacked $target" >&2
