package config

import (
	"strings"
	"testing"
	"time"
)

// TestLimits checks that hostile inputs fail quickly with an error.
func TestLimits(t *testing.T) {
	// 1000 prefix lists of 1000 rules each, written as aliases: a few
	// kilobytes that expand to millions of values.
	bomb := func() string {
		var b strings.Builder
		b.WriteString("version: 1\nnode: {name: gw1}\nrule: &r {action: permit, prefix: 10.0.0.0/8}\n")
		b.WriteString("rules: &rs [" + strings.TrimSuffix(strings.Repeat("*r, ", 1000), ", ") + "]\n")
		b.WriteString("list: &pl {name: x, rules: *rs}\n")
		b.WriteString("bgp:\n  asn: 1\n  router_id: 172.16.0.1\n  prefix_lists: [" + strings.TrimSuffix(strings.Repeat("*pl, ", 1000), ", ") + "]\n")
		return b.String()
	}
	tests := []struct {
		name string
		data string
		want string // in one of the errors
	}{
		{"alias bomb", bomb(), "document too large"},
		{"self reference", "version: 1\nnode: &n {name: gw1, site: *n}\n", "site"},
		{"deep nesting", "version: 1\nnode: {name: gw1}\ntunnels: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n", "tunnels"},
		{"too many errors", "version: 1\nnode: {name: gw1}\n" + strings.Repeat("x: 1\n", 500), "too many errors"},
		{"too big", "version: 1\n#" + strings.Repeat("x", maxFileSize) + "\n", "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Parse("limits.yaml", []byte(tc.data))
			if err == nil {
				t.Fatalf("parsed: %+v", c)
			}
			// A guard against exponential blow-ups, not a speed check: 0.4 s
			// normally, up to 40x slower under -race on a loaded machine.
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("took %v", d)
			}
			errs := Errors(err)
			if len(errs) == 0 || len(errs) > maxErrors+1 {
				t.Fatalf("%d errors: %v", len(errs), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("no error contains %q:\n%v", tc.want, err)
			}
		})
	}
}
