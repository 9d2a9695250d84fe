#!/usr/bin/env bash
# Install the Debian packages the portal needs, only those that are missing.
#
#   deploy/install-debian-packages.sh PACKAGE...
#
# As root: `apt-get update` (only when something is missing), then
# `apt-get install`. The packages that ship a system daemon (redis-server,
# nginx, dnsmasq, hostapd, tor, and the community services: ngircd,
# mumble-server, prosody, icecast2, squid) are installed with a policy-rc.d that
# forbids starting services, and the units of the ones installed here are
# disabled afterwards: the portal runs its own instances of these daemons
# with its own configuration, and a system copy would only take ports and
# memory (and, for dnsmasq, answer DHCP on the machine's own network; for
# tor, open circuits the operator never asked for).
# Daemons that were installed before this script ran are left alone.
#
# Not root: installs nothing, prints what is missing and exits 0, so
# `make run` can continue in dry-run mode.
set -euo pipefail

# A package counts as present when an installed package provides it: e.g.
# NodeSource's nodejs provides (and conflicts with) Debian's npm, which
# apt-get would otherwise try, and fail, to install next to it.
provided=" $(dpkg-query -W -f='${db:Status-Status} ${Provides}\n' 2>/dev/null \
    | sed -n 's/^installed //p' | tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | tr '\n' ' ') "
missing=()
for package in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "installed" && "$provided" != *" $package "* ]]; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "Not root: not installing the missing Debian packages: ${missing[*]}" >&2
    echo "Install them as root (make deps) for the lab and the full test suite." >&2
    exit 0
fi

echo "Installing Debian packages: ${missing[*]}"

policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
    # Exit status 101 means "action not allowed" to invoke-rc.d and
    # deb-systemd-invoke: packages are configured but nothing is started.
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    own_policy=1
fi
cleanup() {
    if [[ $own_policy -eq 1 ]]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -q -y \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"

# Units of daemons we run ourselves, by package name (space-separated).
declare -A units=(
    [redis-server]=redis-server.service
    [nginx-light]=nginx.service
    [nginx]=nginx.service
    [dnsmasq]=dnsmasq.service
    [hostapd]=hostapd.service
    [tor]="tor.service tor@default.service"
    [ngircd]=ngircd.service
    [mumble-server]=mumble-server.service
    [prosody]=prosody.service
    [icecast2]=icecast2.service
    [squid]=squid.service
)
if command -v systemctl >/dev/null; then
    for package in "${missing[@]}"; do
        for unit in ${units[$package]:-}; do
            # Works with or without a running systemd: it removes the
            # symlinks that would start the unit at boot.
            systemctl disable --quiet "$unit" 2>/dev/null || true
            if [[ -d /run/systemd/system ]]; then
                systemctl stop --quiet "$unit" 2>/dev/null || true
            fi
        done
    done
fi
