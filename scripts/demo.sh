#!/bin/sh
# The demo: the lab from DESIGN.md with what works so far. Run as root via
# `make demo`; KEEP=1 leaves the lab up afterwards (remove it with
# `bin/havpn lab down`); PLOT=FILE.svg names the failover plot
# (default bin/demo-failover.svg).
set -eu
cd "$(dirname "$0")/.."
H=bin/havpn
P=${PREFIX:-havpn-}
PLOT=${PLOT:-bin/demo-failover.svg}
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

# BGP needs a few seconds after IKE: wait (up to 20 s) for site 2's LAN.
i=0
until $H --socket "$(sock "$A1")" routes 2>/dev/null | grep -q '192\.168\.2\.0/24.*installed' || [ $i -ge 100 ]; do
	sleep 0.2
	i=$((i + 1))
done
say "BGP (iBGP AS 65432 over the tunnel) learned site 2's LAN; $A1's routes and neighbours:"
$H --socket "$(sock "$A1")" routes
$H --socket "$(sock "$A1")" neighbors

say "s1host pings s2host through the tunnel (ICMP, 1 s)"
lab probe --from s1host --to 192.168.2.10 --icmp --duration 1s

say "Power-off of $A1 while s1host probes its default gateway (LAN VIP 192.168.1.1, UDP) and s2host through the tunnel (ICMP), each every 1 ms, and keeps a TCP stream to s2host"
echo "The drill powers $A1 off, measures, then powers it back on (it rejoins as standby)."
echo "Times are ms from the power-off: DETECT = the standby saw it, TAKEOVER = its resources (VIPs, tunnel, IKE, BGP) started,"
echo "TUNNEL BACK = first reply through the tunnel again, ROUTES BACK = route to site 2's LAN in the new active's kernel."
lab failover --poweroff s1 --runs 1 --plot "$PLOT"
echo "Delivery timeline and phases drawn in $PLOT"

B1=$(active s1)
say "$B1 took over. Its status, with the takeover timeline step by step:"
$H --socket "$(sock "$B1")" status

say "Through the tunnel after the failover"
lab probe --from s1host --to 192.168.2.10 --icmp --duration 1s

say "$A1 is back (powered on by the drill) as standby:"
lab status

if [ "${KEEP:-0}" = 1 ]; then
	echo "lab kept up (KEEP=1); remove it with: $H lab down --prefix $P"
fi
