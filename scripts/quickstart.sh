#!/usr/bin/env bash
# Quick start on a fresh Debian machine: install what is needed, then run the product on its
# embedded default (embedded etcd, virtual rack when available, no hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
command -v etcd >/dev/null || need="$need etcd-server"
command -v ipmitool >/dev/null || need="$need ipmitool"
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
fi
python3 -m pip install -q --disable-pip-version-check -e .
if python3 -m regional_client demo --help >/dev/null 2>&1; then
  exec python3 -m regional_client demo "$@"
fi
exec python3 -m regional_client run --config examples/dev.yaml
