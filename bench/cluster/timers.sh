#!/bin/sh
# Failover time per heartbeat timer setting (issue 5), next to keepalived
# measured the same way in the same run.
#
# For each havpn setting: `havpn lab up` with those timers, then
# `havpn lab failover --poweroff s1 --runs RUNS` (the LAN VIP outage is the
# longest loss window of a 1 ms UDP probe from s1host to site 1's LAN VIP).
# For keepalived (VRRPv3): `havpn lab up --no-daemons`, keepalived in s1gw1
# (priority 150) and s1gw2 (priority 100) holding both site VIPs (adverts on
# lan0), then per run: `havpn lab probe --from s1host --to 192.168.1.1`
# every 1 ms while `havpn lab poweroff` takes the master down; poweron and
# keepalived restarted on it (it preempts back) before the next run.
# Prints median and p99 of the LAN VIP outage per setting.
#
# Run as root from anywhere: ./bench/cluster/timers.sh [RUNS]
#   SETTINGS="default 10ms/30ms 2s/10s"  havpn settings (keepalive/deadtime)
#   KA_ADVERTS="0.01 0.05"               keepalived advert_int values (s)
#   OUT=/tmp/havpn-timers                raw JSON and logs
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-10}
SETTINGS=${SETTINGS:-"default 10ms/30ms 2s/10s"}
KA_ADVERTS=${KA_ADVERTS:-"0.01 0.05"}
OUT=${OUT:-/tmp/havpn-timers}
P=${PREFIX:-tm-}
LANVIP=192.168.1.1
WANVIP=198.51.100.1
mkdir -p "$OUT"
H=$OUT/havpn
go build -o "$H" ./cmd/havpn
command -v keepalived >/dev/null || { echo "keepalived not installed (apt-get install keepalived)" >&2; exit 1; }

lab() { "$H" lab --prefix "$P" "$@"; }
# lab down kills everything in the lab's namespaces (keepalived included);
# the `lab exec` wrappers started here then exit by themselves.
cleanup() {
	lab down >/dev/null 2>&1 || true
	wait
}
trap cleanup EXIT INT TERM
lab down >/dev/null 2>&1 || true

# stats FILE: median and p99 (nearest rank, as havpn lab failover's
# summary) of the numbers in FILE, one a line.
stats() {
	python3 - "$1" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
at = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]
print("%d %.1f %.1f %.1f %.1f" % (len(v), at(0.5), at(0.99), v[0], v[-1]) if v else "0 - - - -")
PY
}

TABLE=$OUT/table.txt
: > "$TABLE"
row() { printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@" >> "$TABLE"; }

for s in $SETTINGS; do
	name="havpn $s"
	flags=""
	if [ "$s" != default ]; then
		flags="--keepalive ${s%/*} --deadtime ${s#*/}"
	fi
	f=$OUT/havpn-$(echo "$s" | tr / _).json
	load0=$(cut -d' ' -f1 /proc/loadavg)
	echo "== $name: lab up $flags; lab failover --poweroff s1 --runs $RUNS" >&2
	# shellcheck disable=SC2086
	if ! lab up $flags >/dev/null; then
		row "$name" "lab up failed" - - - - - "$load0"
		lab down >/dev/null 2>&1 || true
		continue
	fi
	sleep 2
	if lab failover --poweroff s1 --runs "$RUNS" -o json > "$f" 2> "$f.err"; then
		python3 - "$f" > "$OUT/lan.txt" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print(r["lan_vip_outage_ms"])
PY
		read -r n med p99 mn mx <<EOF
$(stats "$OUT/lan.txt")
EOF
		other=$(python3 - "$f" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
f = lambda k: "%.1f" % s[k]["median"] if s.get(k, {}).get("n") else "-"
print("%s / %s / %s" % (f("detect_ms"), f("takeover_ms"), f("tunnel_outage_ms")))
PY
)
	else
		n=0 med="failed: $(tail -1 "$f.err")" p99=- mn=- mx=- other=-
	fi
	load1=$(cut -d' ' -f1 /proc/loadavg)
	row "$name" "$n" "$med" "$p99" "$mn" "$mx" "$other" "$load0 / $load1"
	lab down >/dev/null
done

# keepalived: config for one gateway (priority, advert interval).
kaconf() {
	cat <<K
global_defs {
  router_id $1
  vrrp_version 3
  enable_script_security
  script_user root
}
vrrp_instance VI_1 {
  state BACKUP
  interface lan0
  virtual_router_id 51
  priority $2
  advert_int $3
  virtual_ipaddress {
    $LANVIP/24 dev lan0
    $WANVIP/28 dev wan0
  }
}
K
}
# kastart NODE: start keepalived (foreground, in the node's namespace).
kastart() {
	d=$OUT/ka/$1
	mkdir -p "$d"
	rm -f "$d"/*.pid
	lab exec "$1" -- keepalived -n -l -D -P -f "$d/keepalived.conf" \
		-p "$d/main.pid" -r "$d/vrrp.pid" -c "$d/checkers.pid" < /dev/null >> "$d/log" 2>&1 &
}
# holds NODE: whether NODE has the LAN VIP.
holds() { lab exec "$1" -- ip -4 -o addr show dev lan0 2>/dev/null | grep -q " $LANVIP/"; }
# waitmaster: s1gw1 holds the VIP and s1gw2 no longer does (up to ~20 s).
waitmaster() {
	i=0
	until holds s1gw1 && ! holds s1gw2; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "keepalived: s1gw1 never became the only master" >&2; return 1; }
		sleep 0.1
	done
}

for adv in $KA_ADVERTS; do
	name="keepalived VRRPv3 advert ${adv}s"
	load0=$(cut -d' ' -f1 /proc/loadavg)
	echo "== $name: lab up --no-daemons; poweroff the master x $RUNS" >&2
	lab up --no-daemons >/dev/null
	rm -rf "$OUT/ka"
	mkdir -p "$OUT/ka/s1gw1" "$OUT/ka/s1gw2"
	kaconf s1gw1 150 "$adv" > "$OUT/ka/s1gw1/keepalived.conf"
	kaconf s1gw2 100 "$adv" > "$OUT/ka/s1gw2/keepalived.conf"
	kastart s1gw1
	kastart s1gw2
	: > "$OUT/lan.txt"
	ok=1
	for r in $(seq "$RUNS"); do
		waitmaster || { ok=0; break; }
		sleep 1 # the preempting master's GARPs are out
		pf=$OUT/ka-$adv-$r.json
		lab probe --from s1host --to "$LANVIP" --interval 1ms --duration 3s -o json > "$pf" &
		pp=$!
		sleep 0.5
		lab poweroff s1gw1
		wait $pp
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["outage_ms"])' "$pf" >> "$OUT/lan.txt"
		holds s1gw2 || echo "run $r: s1gw2 does not hold the VIP after the power-off" >&2
		# A SIGKILLed keepalived leaves its VIPs configured; a machine that
		# was off has none when it comes back.
		lab exec s1gw1 -- ip addr del "$LANVIP/24" dev lan0 2>/dev/null || true
		lab exec s1gw1 -- ip addr del "$WANVIP/28" dev wan0 2>/dev/null || true
		lab poweron s1gw1
		kastart s1gw1
	done
	if [ $ok = 1 ]; then
		read -r n med p99 mn mx <<EOF
$(stats "$OUT/lan.txt")
EOF
	else
		n=0 med="failed (see $OUT/ka/*/log)" p99=- mn=- mx=-
	fi
	load1=$(cut -d' ' -f1 /proc/loadavg)
	row "$name" "$n" "$med" "$p99" "$mn" "$mx" "-" "$load0 / $load1"
	lab down >/dev/null
done

echo "LAN VIP outage in ms, power-off of site 1's active gateway, $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo "| setting | runs | median | p99 | min | max | havpn detect / takeover / tunnel outage, median | load avg before / after |"
echo "|---|---|---|---|---|---|---|---|"
cat "$TABLE"
