#!/usr/bin/env bash
# Install the servers the test suite starts on loopback (PostgreSQL, Redis), from Debian's
# packages, when they are missing. The tests start and stop their own throwaway instances;
# nothing is left running and no system service is enabled.
set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v redis-server > /dev/null || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo > /dev/null; then
        SUDO=sudo
    else
        echo "ensure_services: ${missing[*]} missing and not root (no sudo): install them" >&2
        exit 1
    fi
else
    SUDO=
fi

echo "ensure_services: installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d 101: the packages' maintainer scripts must not start system-wide servers.
$SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
$SUDO rm -f /usr/sbin/policy-rc.d
