#!/usr/bin/env bash
# Run the unit tier with the process's clock set (by libfaketime) to instants where date bugs
# live: the last seconds of a year (a month's too), of a leap day (a short month's too), and
# the first seconds of a month after a short February. The clock keeps running from there, so a test that reads the real date anywhere, or
# crosses midnight while it runs, fails on every day CI runs, not only at month end.
#
#   scripts/timetravel.sh [pytest arguments…]      (make timetravel; make test runs it)
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
pytest="$root_dir/.venv/bin/pytest"

library=""
for candidate in /usr/lib/*/faketime/libfaketimeMT.so.1 \
    "$root_dir"/.services/root/usr/lib/*/faketime/libfaketimeMT.so.1; do
    if [ -f "$candidate" ]; then
        library="$candidate"
        break
    fi
done
if [ -z "$library" ]; then
    echo "timetravel: libfaketime is missing (scripts/ensure_services.sh unpacks it)" >&2
    exit 1
fi

instants=(
    "2026-12-31 23:59:40"   # a year's (and a month's) last seconds
    "2028-02-29 23:59:40"   # a leap day's (and a short month's) last seconds
    "2027-03-01 00:00:05"   # a month's first seconds (after a short February)
)
if [ $# -eq 0 ]; then
    set -- tests/unit
fi
# The instants run side by side (each is a few seconds of CPU); each one's output is kept
# and shown only when it fails.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
pids=()
for i in "${!instants[@]}"; do
    # `@` starts the clock at the instant and lets it run; TZ keeps local time UTC too.
    LD_PRELOAD="$library" FAKETIME="@${instants[$i]}" TZ=UTC \
        "$pytest" -q -p no:cacheprovider "$@" > "$logs/$i" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!instants[@]}"; do
    if wait "${pids[$i]}"; then
        echo "timetravel: the unit tier passes at ${instants[$i]} UTC: $(tail -n 1 "$logs/$i")"
    else
        cat "$logs/$i"
        echo "timetravel: the unit tier FAILS at ${instants[$i]} UTC" >&2
        failed=1
    fi
done
exit "$failed"
