#!/bin/sh
# Starts a child in its process group, records its pid, and never finishes:
# the deadline must kill both.
sleep 300 &
echo $! > "${HAVPN_TEST_DIR:?}/child.pid"
echo "hanging in $1" 
sleep 300
