#!/bin/sh
# Spurious-failover check (issue 5): the lab with both CPUs saturated
# (iperf3 through the tunnel plus one busy loop per CPU) for DURATION
# seconds; counts cluster role transitions and stalls on every gateway.
# Run as root from the repository: ./bench/cluster/load.sh [DURATION]
set -eu
cd "$(dirname "$0")/../.."
H=bin/havpn
P=${PREFIX:-ld-}
D=${1:-600}
[ -x $H ] || make build >/dev/null
lab() { $H lab --prefix "$P" "$@"; }
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
lab up >/dev/null
sleep 3
count() {
	for n in s1gw1 s1gw2 s2gw1 s2gw2; do
		$H --socket "/run/havpn-lab/$P/$n.sock" status -o json |
			python3 -c 'import json,sys; c=json.load(sys.stdin)["cluster"]; print(sys.argv[1], c["role"], c["transitions"], c["stalls"], c["late_timers"])' "$n"
	done
}
before=$(count)
lab exec s2host -- iperf3 -s -1 >/dev/null 2>&1 &
pids="$pids $!"
sleep 1
lab exec s1host -- iperf3 -c 192.168.2.10 -t "$D" -P 2 > /tmp/havpn-load-iperf.$$ 2>&1 &
pids="$pids $!"
for i in $(seq "$(nproc)"); do
	sh -c 'while :; do :; done' &
	pids="$pids $!"
done
sleep "$D"
after=$(count)
echo "load: iperf3 -P 2 through the tunnel + $(nproc) busy loops for ${D}s on $(nproc) CPUs"
echo "node role transitions stalls late_timers (before -> after)"
echo "$before" | while read -r n r t s l; do
	a=$(echo "$after" | awk -v n="$n" '$1==n')
	echo "$n $r $t $s $l -> $a"
done
tail -4 /tmp/havpn-load-iperf.$$ | head -2
rm -f /tmp/havpn-load-iperf.$$
