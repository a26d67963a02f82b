package netnsutil_test

import (
	"net"
	"testing"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
)

func TestDoRunsInsideNamespace(t *testing.T) {
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"a")
	var names []string
	err := netnsutil.Do(ns, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("interfaces in a new namespace = %v, want only lo", names)
	}
	if err := netnsutil.Create(ns); err == nil {
		t.Fatal("creating an existing namespace succeeded")
	}
}
