package bgp_test

import (
	"os"
	"testing"

	"github.com/havpn/havpn/internal/bgp/bgptest"
)

// TestMain lets the test binary double as the bgptest helper that runs a
// speaker inside a namespace (interop tests).
func TestMain(m *testing.M) {
	bgptest.Main()
	os.Exit(m.Run())
}
