#!/bin/sh
# The demo: the lab from DESIGN.md with what works so far. Run as root via
# `make demo`; KEEP=1 leaves the lab up afterwards (remove it with
# `bin/havpn lab down`).
set -eu
cd "$(dirname "$0")/.."
H=bin/havpn
P=${PREFIX:-havpn-}
if [ "$(id -u)" != 0 ]; then
	echo "demo: the lab needs root (network namespaces)" >&2
	exit 1
fi
say() { printf '\n== %s\n' "$*"; }
cleanup() { [ "${KEEP:-0}" = 1 ] || $H lab down --prefix "$P" >/dev/null; }
trap cleanup EXIT INT TERM

say "Building the lab: 2 sites x 2 gateways, inet router, one host per site"
$H lab up --prefix "$P"
$H lab status --prefix "$P"

say "Each gateway's daemon answers on its control socket"
for n in s1gw1 s1gw2 s2gw1 s2gw2; do
	$H lab exec --prefix "$P" "$n" -- "$H" --socket "/run/havpn-lab/$P/$n.sock" status
	echo
done

say "s1host reaches both its gateways' LAN addresses (UDP probe, 1 s)"
$H lab probe --prefix "$P" --from s1host --to 192.168.1.2 --duration 1s
$H lab probe --prefix "$P" --from s1host --to 192.168.1.3 --duration 1s

say "Cable pull: s1gw1 lan0 out for 500 ms while s1host probes it every 1 ms"
$H lab probe --prefix "$P" --from s1host --to 192.168.1.2 --interval 1ms --duration 2s &
probe=$!
sleep 0.7
$H lab unplug --prefix "$P" s1gw1 lan0
sleep 0.5
$H lab plug --prefix "$P" s1gw1 lan0
wait $probe

say "Not in this demo yet: cluster failover, the tunnel, IKE, BGP (see README)"
if [ "${KEEP:-0}" = 1 ]; then
	echo "lab kept up (KEEP=1); remove it with: $H lab down --prefix $P"
fi
