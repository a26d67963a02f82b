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
lab() { $H lab --prefix "$P" "$@"; }
sock() { echo "/run/havpn-lab/$P/$1.sock"; }
active() { lab status | awk -v s="$1" '$1 ~ "^"s"gw" && / active / {print $1}'; }

say "Building the lab: 2 sites x 2 gateways, inet router, one host per site; one daemon per gateway"
lab up
sleep 1
lab status

A1=$(active s1)
A2=$(active s2)
say "Each site elected one active gateway: $A1 and $A2. $A1's view:"
$H --socket "$(sock "$A1")" status

say "The tunnel between the active gateways: GRE in ESP in UDP 4500, keyed by IKEv2 with certificates from the lab's CA"
$H --socket "$(sock "$A1")" sas
$H --socket "$(sock "$A1")" tunnels -o json | head -30

say "s1host pings s2host through the tunnel (ICMP, 1 s)"
lab probe --from s1host --to 192.168.2.10 --icmp --duration 1s

say "Power-off of $A1 while s1host probes its default gateway (LAN VIP 192.168.1.1) every 1 ms"
lab probe --from s1host --to 192.168.1.1 --interval 1ms --duration 3s &
probe=$!
lab probe --from s1host --to 192.168.2.10 --icmp --interval 1ms --duration 3s > /tmp/havpn-demo-tunnel.$$ &
probe2=$!
sleep 1
lab poweroff "$A1"
wait $probe
wait $probe2
echo "Through the tunnel (s1host -> s2host) during the same power-off:"
cat /tmp/havpn-demo-tunnel.$$
rm -f /tmp/havpn-demo-tunnel.$$
B1=$(active s1)
say "$B1 took over. Its status, with the takeover timeline:"
$H --socket "$(sock "$B1")" status

say "Through the tunnel after the failover: the new active negotiated a fresh IKE SA (INITIAL_CONTACT)"
lab probe --from s1host --to 192.168.2.10 --icmp --duration 1s

say "Powering $A1 back on: it rejoins as standby"
lab poweron "$A1"
sleep 1
lab status

say "Not in this demo yet: BGP (static routes stand in), the failover drill command (see README)"
if [ "${KEEP:-0}" = 1 ]; then
	echo "lab kept up (KEEP=1); remove it with: $H lab down --prefix $P"
fi
