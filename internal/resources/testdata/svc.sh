#!/bin/sh
# A well-behaved LSB init script whose "service" is a state file in
# $HAVPN_TEST_DIR. Every call is appended to $HAVPN_TEST_DIR/calls.
dir="${HAVPN_TEST_DIR:?}"
name="$(basename "$0" .sh)"
echo "$name $1" >> "$dir/calls"
case "$1" in
start)
	touch "$dir/$name.running"
	;;
stop)
	rm -f "$dir/$name.running"
	;;
status)
	[ -f "$dir/$name.running" ] && exit 0
	exit 3
	;;
*)
	echo "Usage: $0 {start|stop|status}" >&2
	exit 2
	;;
esac
exit 0
