package tunnel

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the dependency direction of STYLE.md: the dataplane is a
// component and imports no other component nor the daemon.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/havpn/havpn/internal/tunnel").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	bad := map[string]string{
		"github.com/havpn/havpn/internal/ike":       "IKE talks to the dataplane through methods the daemon adapts",
		"github.com/havpn/havpn/internal/daemon":    "the daemon composes components, not the reverse",
		"github.com/havpn/havpn/internal/cluster":   "components do not import each other",
		"github.com/havpn/havpn/internal/lab":       "production code never imports the lab",
		"github.com/havpn/havpn/internal/statesync": "state sync uses ExportSAs and the Install methods",
	}
	for _, p := range strings.Fields(string(out)) {
		if why, ok := bad[p]; ok {
			t.Errorf("tunnel imports %s: %s", p, why)
		}
	}
}
