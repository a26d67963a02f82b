#!/bin/sh
# Installs the Debian packages havpn's tests and lab need, if missing.
# Real peers for interop tests (strongSwan, FRR, wireguard-tools, keepalived,
# conntrackd) and tools the benchmarks drive (iperf3, tcpdump).
set -eu
pkgs="iproute2 iputils-ping iperf3 tcpdump nftables conntrack
strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins
libstrongswan-standard-plugins frr keepalived conntrackd wireguard-tools"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test-deps: not root, cannot install:$missing (root-only tests will skip)" >&2
	exit 0
fi
echo "test-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No service may start as a side effect of the install (no init here starts
# them either; this keeps it so on machines with one).
apt-get install -y -qq --no-install-recommends $missing >/dev/null
