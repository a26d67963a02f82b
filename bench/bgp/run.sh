#!/bin/sh
# Benchmark: a 100k-prefix BGP table into the kernel, havpn vs FRR
# (bgpd + zebra). Needs root, FRR (apt-get install frr) and Go.
# Prints a table and writes it to bench/bgp/last-run.md.
set -eu
cd "$(dirname "$0")/../.."
go build -o bin/bench-bgp ./bench/bgp
exec bin/bench-bgp -n "${N:-100000}" -runs "${RUNS:-3}" -out bench/bgp/last-run.md "$@"
