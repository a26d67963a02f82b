#!/bin/sh
# test fixture: an LSB script that does nothing
exit 0
