// Package buildinfo holds the version stamped in at build time.
package buildinfo

import "runtime/debug"

// Version is set with -ldflags "-X github.com/havpn/havpn/internal/buildinfo.Version=v1.2.3".
// It stays a var because the linker can only set vars; nothing writes it at run time.
var Version = ""

// String returns the version, falling back to the VCS revision the Go
// toolchain recorded, then "devel".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
