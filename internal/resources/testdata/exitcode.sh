#!/bin/sh
# Exits with $HAVPN_TEST_EXIT for any action, after saying what it does.
echo "action $1 exits ${HAVPN_TEST_EXIT:?}" >&2
exit "$HAVPN_TEST_EXIT"
