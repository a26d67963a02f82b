#!/bin/bash
# bench/tunnel/run.sh (make bench-tunnel): iperf3 TCP s1host -> s2host in the
# lab through
#   (a) bare routing (no tunnel, via the inet router),
#   (b) havpn (GRE in ESP in UDP 4500, manual keys; bench/tunnel/havpnside),
#   (c) wireguard-go (built from the Go module cache) set up with wg,
#   (d) strongSwan charon with kernel-libipsec (ESP in UDP, AES-GCM-128),
# each 1 and 4 streams, SECS seconds, RUNS repeats, median; plus 64-byte UDP
# packet rate. Prints a table with ratios to (c) and writes it, with the
# command, to bench/tunnel/last-run.md.
#
# Needs root, iperf3, wg (wireguard-tools), strongswan-charon + swanctl +
# libcharon-extra-plugins (make test-deps). Only namespaces with the prefix
# are touched; everything is removed at exit.
#
# Environment: PREFIX (default hb<pid>-), SECS (10), RUNS (3), UDPRUNS (1),
# CIPHER (havpn: aes-gcm-128, the cipher libipsec uses), ONLY ("a b c d"),
# PROFILE=1 (CPU profiles of both havpn sides, summaries in last-run.md),
# KEEP=1 (keep the work directory with iperf3 JSON, logs and profiles).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HAVPN=${HAVPN:-$ROOT/bin/havpn}
P=${PREFIX:-hb$$-}
SECS=${SECS:-10}
RUNS=${RUNS:-3}
UDPRUNS=${UDPRUNS:-1}
CIPHER=${CIPHER:-aes-gcm-128}
ONLY=${ONLY:-a b c d}
WORK=$(mktemp -d /tmp/havpn-bench.XXXXXX)
OUT=$ROOT/bench/tunnel/last-run.md
S2HOST=192.168.2.10
PIDS=()
CMDLINE="$0 $*  (PREFIX=$P SECS=$SECS RUNS=$RUNS UDPRUNS=$UDPRUNS CIPHER=$CIPHER ONLY='$ONLY')"

for c in iperf3 jq; do command -v $c >/dev/null || { echo "need $c (make test-deps)"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  "$HAVPN" lab down --prefix "$P" >/dev/null 2>&1
  [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

nsx() { local n=$1; shift; ip netns exec "$P$n" "$@"; }
log() { echo "[$(date +%T)] $*" >&2; }

[ -x "$HAVPN" ] || (cd "$ROOT" && go build -o "$HAVPN" ./cmd/havpn)
mkdir -p "$WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/havpnside" ./bench/tunnel/havpnside \
  && go build -o "$WORK/bin/wireguard-go" golang.zx2c4.com/wireguard)
WGVER=$(cd "$ROOT" && go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)

log "lab up (prefix $P)"
"$HAVPN" lab up --prefix "$P" --no-daemons >/dev/null
# The LAN VIPs (the hosts' default gateways) on the active gateways.
nsx s1gw1 ip addr add 192.168.1.1/24 dev lan0
nsx s2gw1 ip addr add 192.168.2.1/24 dev lan0

median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

# measure LABEL: TCP 1 and 4 streams (median Gbit/s of RUNS) and UDP 64-byte pps.
declare -A R
measure() {
  local label=$1 pidf=$WORK/iperf-$1.pid
  nsx s2host iperf3 -s -D -B $S2HOST -I "$pidf" >/dev/null
  sleep 0.5
  local ok=1
  nsx s1host ping -c 2 -W 2 -q $S2HOST >/dev/null || ok=0
  if [ $ok = 0 ]; then
    log "$label: s2host unreachable, skipped"
    kill "$(cat "$pidf")" 2>/dev/null || true
    for k in tcp1 tcp4 pps; do R[$label,$k]=n/a; done
    return
  fi
  for streams in 1 4; do
    local vals=()
    for r in $(seq "$RUNS"); do
      local j=$WORK/$label-tcp$streams-$r.json
      nsx s1host iperf3 -c $S2HOST -t "$SECS" -P $streams -J >"$j" || true
      vals+=("$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e9' "$j")")
      log "$label tcp x$streams run $r: ${vals[-1]} Gbit/s"
      sleep 1
    done
    R[$label,tcp$streams]=$(printf '%s\n' "${vals[@]}" | median)
  done
  local pv=()
  for r in $(seq "$UDPRUNS"); do
    local j=$WORK/$label-udp-$r.json
    nsx s1host iperf3 -c $S2HOST -u -l 64 -b 0 -t "$SECS" -J >"$j" || true
    pv+=("$(jq -r '.end.sum as $s | (($s.packets // 0) - ($s.lost_packets // 0)) / ($s.seconds // 1)' "$j")")
    log "$label udp 64B run $r: ${pv[-1]} pkt/s received"
    sleep 1
  done
  R[$label,pps]=$(printf '%s\n' "${pv[@]}" | median)
  kill "$(cat "$pidf")" 2>/dev/null || true
  sleep 0.5
}

stop_pids() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# (a) bare routing through inet.
bench_a() {
  nsx s1gw1 ip route add 192.168.2.0/24 via 198.51.100.14
  nsx s2gw1 ip route add 192.168.1.0/24 via 203.0.113.14
  nsx inet ip route add 192.168.1.0/24 via 198.51.100.2
  nsx inet ip route add 192.168.2.0/24 via 203.0.113.2
  measure a
  nsx s1gw1 ip route del 192.168.2.0/24
  nsx s2gw1 ip route del 192.168.1.0/24
  nsx inet ip route del 192.168.1.0/24
  nsx inet ip route del 192.168.2.0/24
}

# (b) havpn.
bench_b() {
  for s in 1 2; do
    local extra=()
    [ "${PROFILE:-0}" = 1 ] && extra=(-cpuprofile "$WORK/havpn-s$s.pprof")
    "$WORK/bin/havpnside" -prefix "$P" -side $s -keydir "$WORK/keys" -cipher "$CIPHER" "${extra[@]}" \
      >"$WORK/havpn-$s.out" 2>"$WORK/havpn-$s.log" &
    PIDS+=($!)
  done
  for s in 1 2; do
    for i in $(seq 100); do grep -q ready "$WORK/havpn-$s.out" && break; sleep 0.1; done
    grep -q ready "$WORK/havpn-$s.out" || { cat "$WORK/havpn-$s.log" >&2; log "havpn side $s not ready"; }
  done
  measure b
  stop_pids
  for s in 1 2; do
    if [ -f "$WORK/havpn-s$s.pprof" ]; then
      (cd "$ROOT" && go tool pprof -top -nodecount 25 "$WORK/bin/havpnside" "$WORK/havpn-s$s.pprof") >"$WORK/pprof-s$s.txt" 2>/dev/null || true
    fi
  done
  grep -h stopped "$WORK"/havpn-*.log >&2 || true
}

# (c) wireguard-go, configured with wg (UAPI sockets /var/run/wireguard/<if>.sock:
# interface names carry the prefix so that they do not collide).
bench_c() {
  command -v wg >/dev/null || { log "wg missing: (c) skipped"; for k in tcp1 tcp4 pps; do R[c,$k]=n/a; done; return; }
  local i1=${P}wg1 i2=${P}wg2
  (umask 077; wg genkey >"$WORK/wg1.key"; wg genkey >"$WORK/wg2.key")
  wg pubkey <"$WORK/wg1.key" >"$WORK/wg1.pub"; wg pubkey <"$WORK/wg2.key" >"$WORK/wg2.pub"
  nsx s1gw1 "$WORK/bin/wireguard-go" -f "$i1" >"$WORK/wg1.log" 2>&1 & PIDS+=($!)
  nsx s2gw1 "$WORK/bin/wireguard-go" -f "$i2" >"$WORK/wg2.log" 2>&1 & PIDS+=($!)
  for i in $(seq 50); do [ -S /var/run/wireguard/$i1.sock ] && [ -S /var/run/wireguard/$i2.sock ] && break; sleep 0.1; done
  nsx s1gw1 wg set "$i1" private-key "$WORK/wg1.key" listen-port 51820 \
    peer "$(cat "$WORK/wg2.pub")" endpoint 203.0.113.2:51820 allowed-ips 192.168.2.0/24,10.99.0.2/32
  nsx s2gw1 wg set "$i2" private-key "$WORK/wg2.key" listen-port 51820 \
    peer "$(cat "$WORK/wg1.pub")" endpoint 198.51.100.2:51820 allowed-ips 192.168.1.0/24,10.99.0.1/32
  nsx s1gw1 ip addr add 10.99.0.1/30 dev "$i1"; nsx s1gw1 ip link set "$i1" up
  nsx s2gw1 ip addr add 10.99.0.2/30 dev "$i2"; nsx s2gw1 ip link set "$i2" up
  nsx s1gw1 ip route add 192.168.2.0/24 dev "$i1"
  nsx s2gw1 ip route add 192.168.1.0/24 dev "$i2"
  nsx s1gw1 ping -c 3 -W 1 -q 10.99.0.2 >/dev/null || log "wireguard-go: no handshake yet"
  measure c
  stop_pids
}

# (d) strongSwan charon with kernel-libipsec, one instance per gateway in a
# private mount namespace (its pid file is hard-coded under /run;
# shared/interop/DATAPLANE.md).
bench_d() {
  if [ ! -x /usr/lib/ipsec/charon ] || [ ! -f /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ]; then
    log "charon/kernel-libipsec missing: (d) skipped"; for k in tcp1 tcp4 pps; do R[d,$k]=n/a; done; return
  fi
  for s in 1 2; do
    local d=$WORK/ss$s l r lts rts id pid
    mkdir -p "$d/run" "$d/conf"
    if [ $s = 1 ]; then l=198.51.100.2 r=203.0.113.2 lts=192.168.1.0/24 rts=192.168.2.0/24 id=gw-1 pid=gw-2
    else l=203.0.113.2 r=198.51.100.2 lts=192.168.2.0/24 rts=192.168.1.0/24 id=gw-2 pid=gw-1; fi
    cat >"$d/strongswan.conf" <<EOC
charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm kdf gmp pem pkcs1 pkcs8 x509 pubkey revocation constraints kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = yes
  routing_table = 220
  routing_table_prio = 220
  filelog { f { path = $d/charon.log
    default = 1
    flush_line = yes } }
  syslog { daemon { default = -1 } }
  plugins { vici { socket = unix://$d/run/charon.vici } }
}
swanctl { load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints }
EOC
    cat >"$d/conf/swanctl.conf" <<EOC
connections {
  bench {
    version = 2
    local_addrs = $l
    remote_addrs = $r
    encap = yes
    proposals = aes128gcm16-prfsha256-x25519
    local { auth = psk
      id = $id }
    remote { auth = psk
      id = $pid }
    children {
      lan {
        mode = tunnel
        local_ts = $lts
        remote_ts = $rts
        esp_proposals = aes128gcm16
        start_action = $([ $s = 1 ] && echo start || echo trap)
      }
    }
  }
}
secrets { ike-bench { id-1 = gw-1
  id-2 = gw-2
  secret = "bench-only-psk-0123456789" } }
EOC
    (cd "$d/conf" && mkdir -p x509 x509ca x509ocsp x509aa x509ac x509crl pubkey private rsa ecdsa bliss pkcs8 pkcs12)
    ip netns exec "${P}s${s}gw1" unshare --mount --propagation private \
      sh -c "mount --bind $d/run /run && exec env STRONGSWAN_CONF=$d/strongswan.conf /usr/lib/ipsec/charon" \
      >"$d/charon.out" 2>&1 &
    PIDS+=($!)
  done
  for s in 1 2; do for i in $(seq 50); do [ -S "$WORK/ss$s/run/charon.vici" ] && break; sleep 0.1; done; done
  for s in 2 1; do
    STRONGSWAN_CONF=$WORK/ss$s/strongswan.conf swanctl --load-all --file "$WORK/ss$s/conf/swanctl.conf" \
      --uri "unix://$WORK/ss$s/run/charon.vici" >/dev/null || log "swanctl load $s failed"
  done
  for i in $(seq 50); do
    STRONGSWAN_CONF=$WORK/ss1/strongswan.conf swanctl --list-sas --uri "unix://$WORK/ss1/run/charon.vici" 2>/dev/null | grep -q INSTALLED && break
    sleep 0.2
  done
  measure d
  stop_pids
}

for x in $ONLY; do log "== ($x)"; "bench_$x"; done

ratio() { # value reference
  if [[ $1 == n/a || $2 == n/a || $2 == 0 ]]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; fi
}
fmt() { if [[ $1 == n/a || -z $1 ]]; then echo n/a; else awk -v a="$1" -v d="$2" 'BEGIN{printf "%.*f", d, a}'; fi; }
declare -A NAME=([a]="(a) bare routing" [b]="(b) havpn $CIPHER" [c]="(c) wireguard-go $WGVER" [d]="(d) strongSwan kernel-libipsec aes128gcm16")
{
  echo "# bench-tunnel: last run"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) CPUs, Go $(go env GOVERSION)"
  echo
  echo "Command: \`$CMDLINE\`"
  echo
  echo "iperf3 s1host -> s2host through s1gw1/s2gw1, TCP median of $RUNS x ${SECS}s (receiver Gbit/s); UDP 64-byte payload, -b 0, packets/s received (median of $UDPRUNS). Ratios are to (c)."
  echo
  echo "| path | TCP x1 Gbit/s | ratio | TCP x4 Gbit/s | ratio | UDP 64B kpps | ratio |"
  echo "|---|---|---|---|---|---|---|"
  for x in a b c d; do
    [[ " $ONLY " == *" $x "* ]] || continue
    k=$(if [[ ${R[$x,pps]} == n/a ]]; then echo n/a; else awk -v p="${R[$x,pps]}" 'BEGIN{print p/1000}'; fi)
    kc=$(if [[ ${R[c,pps]:-n/a} == n/a ]]; then echo n/a; else awk -v p="${R[c,pps]}" 'BEGIN{print p/1000}'; fi)
    echo "| ${NAME[$x]} | $(fmt "${R[$x,tcp1]}" 3) | $(ratio "${R[$x,tcp1]}" "${R[c,tcp1]:-n/a}") | $(fmt "${R[$x,tcp4]}" 3) | $(ratio "${R[$x,tcp4]}" "${R[c,tcp4]:-n/a}") | $(fmt "$k" 1) | $(ratio "$k" "$kc") |"
  done
  for s in 1 2; do
    [ -f "$WORK/pprof-s$s.txt" ] || continue
    echo
    echo "CPU profile of havpn on s${s}gw1 during (b) (s1gw1 mostly sends, s2gw1 mostly receives):"
    echo
    echo '```'
    sed -n '5,40p' "$WORK/pprof-s$s.txt"
    echo '```'
  done
} | tee "$OUT"
