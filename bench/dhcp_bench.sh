#!/bin/sh
# DHCP load benchmark: perfdhcp drives our server, Kea (memfile) and dnsmasq in turn, in the same
# run, same network-namespace setup and pool size. Prints DORA/s, drop rate and our ratios.
# Needs root (namespaces) and: perfdhcp (kea-admin), kea-dhcp4-server, dnsmasq-base, etcd-server.
# Usage: bench/dhcp_bench.sh [--duration 10] [--rates 1000,4000,16000] [--servers ours,kea,dnsmasq]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in perfdhcp kea-dhcp4 dnsmasq etcd taskset ip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool" >&2; exit 2; }
done
exec python3 "$here/dhcp_bench.py" "$@"
