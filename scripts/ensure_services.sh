#!/usr/bin/env bash
# Make the programs the test suite starts on loopback available: PostgreSQL (pg_ctl, initdb,
# postgres, psql), redis-server, and libfaketime (the unit tier at fixed instants).
#
# What the machine already has is used as it is. What it lacks is downloaded from Debian's
# package archive into .services/ (the project's own, git-ignored folder) and unpacked there
# with `dpkg-deb -x`: no maintainer script runs, no system service is installed, enabled or
# started, and no file outside the project is written or removed — apt keeps its package
# lists and downloads under .services/apt too. tests/services.py finds the programs in either
# place. `make clean-services` removes the folder.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
services="$root_dir/.services"
unpacked="$services/root"

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null \
        || compgen -G "$unpacked/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null
}
have_redis() {
    command -v redis-server > /dev/null || [ -x "$unpacked/usr/bin/redis-server" ]
}
have_faketime() {
    compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" > /dev/null \
        || compgen -G "$unpacked/usr/lib/*/faketime/libfaketimeMT.so.1" > /dev/null
}

wanted=()
[ "${VG_SERVICES_IGNORE_SYSTEM:-}" = 1 ] && {
    # For checking this script itself: behave as on a machine that has none of them.
    have_postgres() { compgen -G "$unpacked/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null; }
    have_redis() { [ -x "$unpacked/usr/bin/redis-server" ]; }
    have_faketime() { compgen -G "$unpacked/usr/lib/*/faketime/libfaketimeMT.so.1" > /dev/null; }
}
have_postgres || wanted+=(postgresql)
have_redis || wanted+=(redis-server)
have_faketime || wanted+=(faketime)
[ ${#wanted[@]} -eq 0 ] && exit 0

for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" > /dev/null; then
        echo "ensure_services: ${wanted[*]} missing and $tool is not here (not Debian?): install them" >&2
        exit 1
    fi
done

echo "ensure_services: unpacking ${wanted[*]} from Debian's packages into .services/" >&2
mkdir -p "$services/apt/lists/partial" "$services/apt/cache/archives/partial" "$services/debs"
apt_options=(
    -o "Dir::State::Lists=$services/apt/lists"
    -o "Dir::Cache=$services/apt/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=$(id -un)"
)
if [ "${VG_SERVICES_IGNORE_SYSTEM:-}" = 1 ]; then
    # Resolve as on a machine without these packages: the system's dpkg status, less them.
    awk -v RS= -v ORS='\n\n' \
        '!/^Package: (postgresql|redis|libjemalloc|liblzf|faketime|libfaketime)/' \
        /var/lib/dpkg/status > "$services/apt/status"
    apt_options+=(-o "Dir::State::status=$services/apt/status")
fi
apt-get "${apt_options[@]}" update -qq
# What an install would add to this machine: packages it does not have at all (an upgrade of
# one it has is left alone: the installed version is there to use).
mapfile -t packages < <(
    apt-get "${apt_options[@]}" --simulate -qq install --no-install-recommends "${wanted[@]}" \
        | awk '/^Inst / && $3 !~ /^\[/ { print $2 }'
)
if [ ${#packages[@]} -eq 0 ]; then
    echo "ensure_services: apt found nothing to fetch for ${wanted[*]}" >&2
    exit 1
fi
rm -f "$services"/debs/*.deb
(cd "$services/debs" && apt-get "${apt_options[@]}" download -qq "${packages[@]}")
for deb in "$services"/debs/*.deb; do
    dpkg-deb -x "$deb" "$unpacked"
done
echo "ensure_services: unpacked ${#packages[@]} packages under .services/root" >&2
