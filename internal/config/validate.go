package config

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded and defaulted Config, reporting through the
// decoder so that every error carries the position of its field.
type validator struct {
	d     *decoder
	c     *Config
	dir   string            // directory of the config file
	files map[string]string // field path -> file name as written in the config
}

// parentField returns the path of the field that contains field.
func parentField(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}

// written reports whether field appears in the file.
func (v *validator) written(field string) bool {
	_, ok := v.d.at[field]
	return ok
}

// where returns the position of field, or of the nearest enclosing field
// that is written in the file.
func (v *validator) where(field string) pos {
	for f := field; ; f = parentField(f) {
		if p, ok := v.d.at[f]; ok {
			return p
		}
		if f == "" {
			return pos{1, 1}
		}
	}
}

// suppressed reports whether field or a field containing it already has an
// error; one error per field is enough.
func (v *validator) suppressed(field string) bool {
	for f := field; ; f = parentField(f) {
		if v.d.bad[f] {
			return true
		}
		if f == "" {
			return false
		}
	}
}

// errf reports a problem with field at the field's position.
func (v *validator) errf(field, format string, args ...any) {
	v.errAt(v.where(field), field, format, args...)
}

// errAt reports a problem with field at position p.
func (v *validator) errAt(p pos, field, format string, args ...any) {
	if v.suppressed(field) {
		return
	}
	v.d.fail(p, field, format, args...)
}

// ok reports whether field can be checked further: it has no error yet.
func (v *validator) ok(field string) bool { return !v.suppressed(field) }

// fileField is a config field that names a file.
type fileField struct {
	field string
	path  *string
}

// fileFields lists every field that names a file relative to the config.
func (v *validator) fileFields() []fileField {
	c := v.c
	var ff []fileField
	if c.Cluster != nil {
		ff = append(ff, fileField{"cluster.auth_key_file", &c.Cluster.AuthKeyFile})
	}
	for i := range c.Resources {
		ff = append(ff, fileField{fmt.Sprintf("resources[%d].path", i), &c.Resources[i].Path})
	}
	for i := range c.Tunnels {
		if m := c.Tunnels[i].Manual; m != nil {
			ff = append(ff,
				fileField{fmt.Sprintf("tunnels[%d].manual.inbound.key_file", i), &m.Inbound.KeyFile},
				fileField{fmt.Sprintf("tunnels[%d].manual.outbound.key_file", i), &m.Outbound.KeyFile})
		}
	}
	if k := c.IKE; k != nil {
		ff = append(ff,
			fileField{"ike.cert_file", &k.CertFile},
			fileField{"ike.key_file", &k.KeyFile},
			fileField{"ike.ca_file", &k.CAFile},
			fileField{"ike.psk_file", &k.PSKFile})
	}
	if b := c.BGP; b != nil {
		for i := range b.Neighbors {
			ff = append(ff, fileField{fmt.Sprintf("bgp.neighbors[%d].password_file", i), &b.Neighbors[i].PasswordFile})
		}
	}
	return ff
}

// resolvePaths makes file names absolute, relative ones against the
// directory of the config file, remembering them as written for messages.
func (v *validator) resolvePaths() {
	for _, f := range v.fileFields() {
		if *f.path == "" {
			continue
		}
		v.files[f.field] = *f.path
		p := *f.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(v.dir, p)
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		*f.path = p
	}
}

// secret checks the secret file named by field and returns its contents.
func (v *validator) secret(field, path string) ([]byte, bool) {
	b, err := readSecret(path)
	if err != nil {
		v.errf(field, "%q: %v", v.files[field], err)
		return nil, false
	}
	return b, true
}

// pemFile checks that field names a readable file holding a PEM block whose
// type contains kind.
func (v *validator) pemFile(field, path, kind string) {
	b, err := os.ReadFile(path)
	if err != nil {
		v.errf(field, "%q: %v", v.files[field], fileError(err))
		return
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			v.errf(field, "%q: holds no PEM %s", v.files[field], kind)
			return
		}
		if strings.Contains(blk.Type, kind) {
			return
		}
	}
}

func (v *validator) validate() {
	c := v.c
	switch {
	case !v.written("version"):
		v.errf("version", "required: the first line should be \"version: 1\"")
	case c.Version != 1:
		v.errf("version", "%d is not supported: this havpn reads version 1", c.Version)
	}
	v.node()
	v.logControlMetrics()
	v.cluster()
	v.tunnels()
	v.ike()
	v.bgp()
	v.resources()
	v.stateSync()
}

func (v *validator) node() {
	n := v.c.Node
	if n.Name == "" {
		v.errf("node.name", "required (the gateway's name, like s1gw1)")
	} else if !validName(n.Name) {
		v.errf("node.name", "%q: use 1 to 32 characters a-z, 0-9 and -", n.Name)
	}
	if n.Site != "" && !validName(n.Site) {
		v.errf("node.site", "%q: use 1 to 32 characters a-z, 0-9 and -", n.Site)
	}
}

func (v *validator) logControlMetrics() {
	c := v.c
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.errf("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		v.errf("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if !filepath.IsAbs(c.Control.Socket) {
		v.errf("control.socket", "%q: must be an absolute path", c.Control.Socket)
	}
	if l := c.Metrics.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		if err != nil {
			v.errf("metrics.listen", "%q: must be host:port (like 127.0.0.1:9740), or \"off\"", l)
		} else if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
			v.errf("metrics.listen", "%q: the host must be an IP address, localhost or empty", l)
		} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
			v.errf("metrics.listen", "%q: the port must be a number 0..65535", l)
		}
	}
}

// validName reports whether s is a name of 1..32 characters a-z, 0-9, -.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ifNameProblem returns why s cannot be a Linux interface name
// (dev_valid_name), or "".
func ifNameProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 15:
		return fmt.Sprintf("%q is %d characters; interface names have at most 15", s, len(s))
	case s == "." || s == "..":
		return fmt.Sprintf("%q is not an interface name", s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return fmt.Sprintf("%q: interface names cannot contain '/', ':' or white space", s)
	}
	return ""
}

func (v *validator) ifName(field, s string) {
	if p := ifNameProblem(s); p != "" {
		v.errf(field, "%s", p)
	}
}

// unicast reports a problem if a is not a usable unicast address.
func (v *validator) unicast(field string, a netip.Addr) {
	switch {
	case a.IsUnspecified():
		v.errf(field, "%s is the unspecified address", a)
	case a.IsMulticast():
		v.errf(field, "%s is a multicast address", a)
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		v.errf(field, "%s is the broadcast address", a)
	}
}

// hostPrefix reports a problem if p's address is the network or broadcast
// address of an IPv4 prefix that has room for hosts.
func (v *validator) hostPrefix(field string, p netip.Prefix) {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		v.unicast(field, p.Addr())
		return
	}
	net := p.Masked().Addr()
	b := net.As4()
	hostBits := 32 - p.Bits()
	bcast := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | (1<<hostBits - 1)
	switch {
	case p.Addr() == net:
		v.errf(field, "%s is the network address of %s; use a host address like %s/%d", p.Addr(), p.Masked(), net.Next(), p.Bits())
	case p.Addr() == netip.AddrFrom4([4]byte{byte(bcast >> 24), byte(bcast >> 16), byte(bcast >> 8), byte(bcast)}):
		v.errf(field, "%s is the broadcast address of %s", p.Addr(), p.Masked())
	default:
		v.unicast(field, p.Addr())
	}
}

func (v *validator) cluster() {
	cl := v.c.Cluster
	if cl == nil {
		return
	}
	if cl.NodeID == 0 && v.ok("cluster.node_id") {
		if v.written("cluster.node_id") {
			v.errf("cluster.node_id", "must be 1..255")
		} else {
			v.errf("cluster.node_id", "required (1..255, unique in the cluster)")
		}
	}
	if cl.AuthKeyFile == "" {
		v.errf("cluster.auth_key_file", "required: a file with the cluster's shared HMAC key (at least 16 bytes, mode 0600)")
	} else if b, ok := v.secret("cluster.auth_key_file", cl.AuthKeyFile); ok && len(bytes.TrimSpace(b)) < 16 {
		v.errf("cluster.auth_key_file", "%q: the key has %d bytes; use at least 16", v.files["cluster.auth_key_file"], len(bytes.TrimSpace(b)))
	}
	if cl.Port == 0 {
		v.errf("cluster.port", "must be 1..65535")
	}
	v.timers()

	if len(cl.Peers) == 0 {
		v.errf("cluster.peers", "required: list the other members of the cluster (or leave out the cluster section for a standalone node)")
	}
	names := map[string]int{}
	ids := map[uint8]int{}
	for i, p := range cl.Peers {
		f := fmt.Sprintf("cluster.peers[%d]", i)
		switch {
		case p.Name == "":
			v.errf(f+".name", "required")
		case !validName(p.Name):
			v.errf(f+".name", "%q: use 1 to 32 characters a-z, 0-9 and -", p.Name)
		case p.Name == v.c.Node.Name:
			v.errf(f+".name", "%q is this node's own name", p.Name)
		default:
			if j, dup := names[p.Name]; dup {
				v.errf(f+".name", "%q is already cluster.peers[%d]", p.Name, j)
			}
			names[p.Name] = i
		}
		switch {
		case p.NodeID == 0:
			v.errf(f+".node_id", "required (1..255)")
		case p.NodeID == cl.NodeID:
			v.errf(f+".node_id", "%d is this node's own cluster.node_id", p.NodeID)
		default:
			if j, dup := ids[p.NodeID]; dup {
				v.errf(f+".node_id", "%d is already the node_id of cluster.peers[%d]", p.NodeID, j)
			}
			ids[p.NodeID] = i
		}
	}

	if len(cl.Links) == 0 {
		v.errf("cluster.links", "required: at least one heartbeat link (better two)")
	}
	links := map[string]int{}
	for i, l := range cl.Links {
		f := fmt.Sprintf("cluster.links[%d]", i)
		switch {
		case l.Name == "":
			v.errf(f+".name", "required")
		case !validName(l.Name):
			v.errf(f+".name", "%q: use 1 to 32 characters a-z, 0-9 and -", l.Name)
		default:
			if j, dup := links[l.Name]; dup {
				v.errf(f+".name", "%q is already cluster.links[%d]", l.Name, j)
			}
			links[l.Name] = i
		}
		v.link(f, l)
	}
	seen := map[netip.Addr]bool{}
	for i, a := range cl.PingNodes {
		f := fmt.Sprintf("cluster.ping_nodes[%d]", i)
		if seen[a] {
			v.errf(f, "%s is listed twice", a)
		}
		seen[a] = true
		v.unicast(f, a)
	}
	mon := map[string]bool{}
	for i, m := range cl.Monitor {
		f := fmt.Sprintf("cluster.monitor[%d]", i)
		v.ifName(f, m)
		if mon[m] {
			v.errf(f, "%q is listed twice", m)
		}
		mon[m] = true
	}
	if cl.GARP.Count < 0 || cl.GARP.Count > 100 {
		v.errf("cluster.garp.count", "%d: must be 0..100", cl.GARP.Count)
	}
	if cl.GARP.Count > 1 && cl.GARP.Interval == 0 {
		v.errf("cluster.garp.interval", "must be longer than 0 when count is more than 1")
	}
}

// timers checks 10ms <= keepalive < warntime <= deadtime <= initdead.
func (v *validator) timers() {
	t := v.c.Cluster.Timers
	const f = "cluster.timers"
	if !v.ok(f+".keepalive") || !v.ok(f+".deadtime") || !v.ok(f+".warntime") || !v.ok(f+".initdead") {
		return
	}
	if t.Keepalive < Duration(10*time.Millisecond) {
		v.errf(f+".keepalive", "%s is too short: at least 10ms", t.Keepalive)
		return
	}
	if t.Deadtime <= t.Keepalive {
		v.errf(f+".deadtime", "%s must be longer than keepalive (%s)", t.Deadtime, t.Keepalive)
		return
	}
	if t.Warntime <= t.Keepalive {
		v.errf(f+".warntime", "%s must be longer than keepalive (%s)", t.Warntime, t.Keepalive)
	} else if t.Warntime > t.Deadtime {
		v.errf(f+".warntime", "%s must not be longer than deadtime (%s)", t.Warntime, t.Deadtime)
	}
	if t.Initdead < t.Deadtime {
		v.errf(f+".initdead", "%s must not be shorter than deadtime (%s)", t.Initdead, t.Deadtime)
	}
}

// link checks that a heartbeat link has exactly one shape.
func (v *validator) link(f string, l Link) {
	if l.Serial != "" {
		if l.Interface != "" {
			v.errf(f+".interface", "a serial link has no interface")
		}
		if l.Peer.IsValid() {
			v.errf(f+".peer", "a serial link has no peer address")
		}
		if l.Group.IsValid() {
			v.errf(f+".group", "a serial link has no group address")
		}
		if !filepath.IsAbs(l.Serial) {
			v.errf(f+".serial", "%q: must be an absolute device path like /dev/ttyS0", l.Serial)
		}
		switch l.Baud {
		case 0:
			v.errf(f+".baud", "required for a serial link (9600, 19200, 38400, 57600, 115200 or 230400)")
		case 9600, 19200, 38400, 57600, 115200, 230400:
		default:
			v.errf(f+".baud", "%d: must be 9600, 19200, 38400, 57600, 115200 or 230400", l.Baud)
		}
		return
	}
	if l.Baud != 0 {
		v.errf(f+".baud", "only serial links have a baud rate")
	}
	if l.Interface == "" {
		v.errf(f+".interface", "required (or serial, for a serial link)")
	} else {
		v.ifName(f+".interface", l.Interface)
	}
	switch {
	case l.Peer.IsValid() && l.Group.IsValid():
		v.errf(f+".group", "give either peer (unicast) or group (multicast), not both")
	case l.Peer.IsValid():
		v.unicast(f+".peer", l.Peer)
	case l.Group.IsValid():
		if !l.Group.IsMulticast() {
			v.errf(f+".group", "%s is not a multicast address", l.Group)
		}
	case v.ok(f+".peer") && v.ok(f+".group"):
		v.errf(f+".peer", "required: the peer's address on this link (or group, for multicast)")
	}
}

func (v *validator) resources() {
	c := v.c
	names := map[string]int{}
	tunnels := map[string]int{}
	vips := map[netip.Addr]int{}
	singles := map[ResourceType]int{}
	for i, r := range c.Resources {
		f := fmt.Sprintf("resources[%d]", i)
		switch {
		case r.Name == "":
			v.errf(f+".name", "required")
		case !validName(r.Name):
			v.errf(f+".name", "%q: use 1 to 32 characters a-z, 0-9 and -", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				v.errf(f+".name", "%q is already resources[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		if r.Type == "" {
			v.errf(f+".type", "required (vip, tunnel, ike, bgp or script)")
			continue
		}
		// Fields that do not belong to the type.
		for _, x := range []struct {
			name, owner string
			set         bool
		}{
			{"address", "vip", r.Address.IsValid()},
			{"interface", "vip", r.Interface != ""},
			{"tunnel", "tunnel", r.Tunnel != ""},
			{"path", "script", r.Path != ""},
		} {
			if x.set && string(r.Type) != x.owner {
				v.errf(f+"."+x.name, "only for type %s (this resource is type %s)", x.owner, r.Type)
			}
		}
		switch r.Type {
		case ResourceVIP:
			if !r.Address.IsValid() {
				v.errf(f+".address", "required: the virtual address with its prefix length, like 198.51.100.1/28")
			} else {
				v.hostPrefix(f+".address", r.Address)
				if j, dup := vips[r.Address.Addr()]; dup {
					v.errf(f+".address", "%s is already resources[%d]", r.Address.Addr(), j)
				}
				vips[r.Address.Addr()] = i
			}
			if r.Interface == "" {
				v.errf(f+".interface", "required: the interface the address goes on")
			} else {
				v.ifName(f+".interface", r.Interface)
			}
		case ResourceTunnel:
			if r.Tunnel == "" {
				v.errf(f+".tunnel", "required: the name of a tunnels entry")
				break
			}
			if !slices.ContainsFunc(c.Tunnels, func(t Tunnel) bool { return t.Name == r.Tunnel }) {
				v.errf(f+".tunnel", "%q is not defined in tunnels%s", r.Tunnel, defined(tunnelNames(c.Tunnels)))
			} else if j, dup := tunnels[r.Tunnel]; dup {
				v.errf(f+".tunnel", "tunnel %q is already resources[%d]", r.Tunnel, j)
			}
			tunnels[r.Tunnel] = i
		case ResourceScript:
			if r.Path == "" {
				v.errf(f+".path", "required: an LSB script taking start, stop and status")
				break
			}
			fi, err := os.Stat(r.Path)
			switch {
			case err != nil:
				v.errf(f+".path", "%q: %v", v.files[f+".path"], fileError(err))
			case !fi.Mode().IsRegular():
				v.errf(f+".path", "%q: is not a regular file", v.files[f+".path"])
			case fi.Mode().Perm()&0o111 == 0:
				v.errf(f+".path", "%q: is not executable (mode %04o)", v.files[f+".path"], fi.Mode().Perm())
			}
		case ResourceIKE, ResourceBGP:
			if j, dup := singles[r.Type]; dup {
				v.errf(f+".type", "a second %s resource (the first is resources[%d])", r.Type, j)
			}
			singles[r.Type] = i
			if r.Type == ResourceIKE && c.IKE == nil {
				v.errf(f+".type", "an ike resource needs the ike section")
			}
			if r.Type == ResourceBGP {
				switch {
				case c.BGP == nil:
					v.errf(f+".type", "a bgp resource needs the bgp section")
				case c.BGP.AlwaysOn:
					v.errf(f+".type", "bgp.always_on is true, so BGP is not a resource: remove this entry or set always_on: false")
				}
			}
		}
	}
}

func tunnelNames(ts []Tunnel) []string {
	var out []string
	for _, t := range ts {
		if t.Name != "" {
			out = append(out, t.Name)
		}
	}
	return out
}

// defined formats the names that do exist, for "not defined" messages.
func defined(names []string) string {
	if len(names) == 0 {
		return " (there are none)"
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func (v *validator) tunnels() {
	c := v.c
	names := map[string]int{}
	spis := map[uint32]string{}
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		f := fmt.Sprintf("tunnels[%d]", i)
		switch {
		case t.Name == "":
			v.errf(f+".name", "required: the tunnel interface's name (at most 15 characters)")
		case ifNameProblem(t.Name) != "":
			v.errf(f+".name", "%s", ifNameProblem(t.Name))
		default:
			if j, dup := names[t.Name]; dup {
				v.errf(f+".name", "%q is already tunnels[%d]", t.Name, j)
			}
			names[t.Name] = i
		}
		v.tunnelEndpoints(f, t)
		for j := range i {
			o := &c.Tunnels[j]
			if o.Local == t.Local && o.Remote == t.Remote && o.Port == t.Port && t.Local.IsValid() && t.Remote.IsValid() &&
				(o.GREKey == nil) == (t.GREKey == nil) && (t.GREKey == nil || *t.GREKey == *o.GREKey) {
				v.errf(f+".gre_key", "tunnels[%d] has the same local, remote and port: give the two tunnels different gre_key values", j)
			}
		}
		if t.Port == 0 {
			v.errf(f+".port", "must be 1..65535")
		}
		if t.GREKey != nil && t.Mode != ModeGRE {
			v.errf(f+".gre_key", "only for mode gre")
		}
		v.tunnelAddress(f, t)
		v.tunnelMTU(f, t)
		if t.ReplayWindow < 1024 || t.ReplayWindow > 65536 {
			v.errf(f+".replay_window", "%d: must be 1024..65536 packets (RFC 4303 3.4.3; smaller windows drop reordered packets of a parallel sender)", t.ReplayWindow)
		}
		switch {
		case t.Keepalive.Interval < Duration(10*time.Millisecond):
			v.errf(f+".keepalive.interval", "%s is too short: at least 10ms", t.Keepalive.Interval)
		case t.Keepalive.Dead <= t.Keepalive.Interval:
			v.errf(f+".keepalive.dead", "%s must be longer than interval (%s)", t.Keepalive.Dead, t.Keepalive.Interval)
		}
		v.tunnelKeying(f, t, spis)
	}
}

func (v *validator) tunnelEndpoints(f string, t *Tunnel) {
	if !t.Local.IsValid() {
		v.errf(f+".local", "required: this site's WAN address (its VIP)")
	} else {
		v.unicast(f+".local", t.Local)
	}
	if !t.Remote.IsValid() {
		v.errf(f+".remote", "required: the other site's WAN address")
	} else {
		v.unicast(f+".remote", t.Remote)
	}
	if t.Local.IsValid() && t.Remote.IsValid() {
		switch {
		case t.Local.Is4() != t.Remote.Is4():
			v.errf(f+".remote", "%s and local %s are of different IP versions", t.Remote, t.Local)
		case t.Local == t.Remote:
			v.errf(f+".remote", "%s is also the local address", t.Remote)
		}
	}
}

func (v *validator) tunnelAddress(f string, t *Tunnel) {
	if !t.Address.IsValid() {
		v.errf(f+".address", "required: this end's inner address with prefix length, like 172.16.0.1/30")
	} else {
		v.hostPrefix(f+".address", t.Address)
	}
	if !t.PeerAddress.IsValid() {
		v.errf(f+".peer_address", "required: the other end's inner address, like 172.16.0.2")
		return
	}
	if !t.Address.IsValid() || !v.ok(f+".address") {
		return
	}
	if t.IKE != nil {
		for _, ts := range []struct {
			name string
			ps   []netip.Prefix
		}{{"local_ts", t.IKE.LocalTS}, {"remote_ts", t.IKE.RemoteTS}} {
			for i, p := range ts.ps {
				fi := fmt.Sprintf("%s.ike.%s[%d]", f, ts.name, i)
				switch {
				case t.Mode != ModeIP:
					v.errf(fi, "traffic selectors apply to mode ip tunnels only (mode gre protects GRE between local and remote)")
				case p != p.Masked():
					v.errf(fi, "%s has host bits set; did you mean %s?", p, p.Masked())
				}
			}
		}
	}
	for i, r := range t.Routes {
		if r != r.Masked() {
			v.errf(fmt.Sprintf("%s.routes[%d]", f, i), "%s has host bits set; did you mean %s?", r, r.Masked())
		}
	}
	switch {
	case t.PeerAddress == t.Address.Addr():
		v.errf(f+".peer_address", "%s is this end's own address", t.PeerAddress)
	case !t.Address.Contains(t.PeerAddress):
		v.errf(f+".peer_address", "%s is not in %s (address)", t.PeerAddress, t.Address.Masked())
	}
}

func (v *validator) tunnelMTU(f string, t *Tunnel) {
	minWAN := 576
	if t.Local.Is6() {
		minWAN = 1280
	}
	if t.WANMTU < minWAN || t.WANMTU > 65535 {
		v.errf(f+".wan_mtu", "%d: must be %d..65535", t.WANMTU, minWAN)
		return
	}
	over := t.Overhead()
	maxMTU := t.WANMTU - over
	minMTU := 576
	if t.Address.Addr().Is6() {
		minMTU = 1280
	}
	outer := "IPv4"
	if t.Local.Is6() {
		outer = "IPv6"
	}
	layers := outer + ", UDP, ESP"
	if t.Mode == ModeGRE {
		layers += ", GRE"
	}
	switch {
	case t.MTU > maxMTU:
		v.errf(f+".mtu", "%d is too large for wan_mtu %d: at most %d (%d bytes of %s headers); leave mtu out to derive it",
			t.MTU, t.WANMTU, maxMTU, over, layers)
	case t.MTU < minMTU && v.written(f+".mtu"):
		v.errf(f+".mtu", "%d is too small: at least %d", t.MTU, minMTU)
	case t.MTU < minMTU:
		v.errf(f+".wan_mtu", "%d leaves an inner MTU of %d after %d bytes of %s headers; at least %d is needed",
			t.WANMTU, maxMTU, over, layers, minMTU)
	}
}

func (v *validator) tunnelKeying(f string, t *Tunnel, spis map[uint32]string) {
	switch t.Keying {
	case "":
		if v.ok(f + ".keying") {
			v.errf(f+".keying", "required: ike or manual")
		}
	case KeyingManual:
		if t.IKE != nil {
			v.errf(f+".ike", "only with keying: ike (this tunnel has keying: manual)")
		}
		if t.Manual == nil {
			v.errf(f+".manual", "required with keying: manual (inbound and outbound spi and key_file)")
			return
		}
		var keys [2][]byte
		for k, dir := range []string{"inbound", "outbound"} {
			sa := &t.Manual.Inbound
			if dir == "outbound" {
				sa = &t.Manual.Outbound
			}
			sf := f + ".manual." + dir
			switch {
			case sa.SPI == 0 && !v.written(sf+".spi"):
				v.errf(sf+".spi", "required (256 or more)")
			case sa.SPI < 256:
				v.errf(sf+".spi", "%d is reserved (RFC 4303 §2.1): use 256 or more", sa.SPI)
			case dir == "inbound":
				if other, dup := spis[sa.SPI]; dup {
					v.errf(sf+".spi", "%d is already the inbound SPI of %s", sa.SPI, other)
				}
				spis[sa.SPI] = f
			}
			if sa.KeyFile == "" {
				v.errf(sf+".key_file", "required: a file with the %s key and salt (%d bytes, raw or hex; mode 0600)", t.Cipher, CipherKeyLen(t.Cipher))
				continue
			}
			b, ok := v.secret(sf+".key_file", sa.KeyFile)
			if !ok || CipherKeyLen(t.Cipher) == 0 {
				continue
			}
			key, err := decodeKey(b, t.Cipher)
			if err != nil {
				v.errf(sf+".key_file", "%q: %v", v.files[sf+".key_file"], err)
				continue
			}
			keys[k] = key
		}
		if keys[0] != nil && bytes.Equal(keys[0], keys[1]) {
			v.errf(f+".manual.outbound.key_file", "same key as inbound: with one key in both directions the AEAD nonces repeat; use two keys")
		}
	case KeyingIKE:
		if t.Manual != nil {
			v.errf(f+".manual", "only with keying: manual (this tunnel has keying: ike)")
		}
		if t.IKE != nil && t.IKE.RemoteID != "" {
			if p := identityProblem(t.IKE.RemoteID); p != "" {
				v.errf(f+".ike.remote_id", "%q: %s", t.IKE.RemoteID, p)
			}
		}
	}
}

// identityProblem returns why s is not an IKE identity (RFC 7296 §3.5):
// @fqdn, @#hex (key ID), an IP address, user@fqdn, or a DN with = in it.
func identityProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "an identity must not be empty"
	case s == "@":
		return "@ needs a name after it, like @site1.example.com"
	case strings.HasPrefix(s, "@#"):
		if b, err := hex.DecodeString(s[2:]); err != nil || len(b) == 0 {
			return "a key ID (@#) needs hex digits after it"
		}
	case strings.Contains(s, "="):
		for _, rdn := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(rdn), "=")
			if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(val) == "" {
				return "a distinguished name is attribute=value pairs separated by commas, like \"C=CH, O=Example, CN=gw1\""
			}
		}
	}
	return ""
}

func (v *validator) ike() {
	c := v.c
	if c.IKE == nil {
		for i, t := range c.Tunnels {
			if t.Keying == KeyingIKE {
				f := fmt.Sprintf("tunnels[%d].keying", i)
				v.errAt(v.where(f), "ike", "required because tunnels[%d] (%s) has keying: ike", i, t.Name)
				return
			}
		}
		return
	}
	k := c.IKE
	if k.Port == 0 {
		v.errf("ike.port", "must be 1..65535")
	}
	switch {
	case k.NATPort == 0:
		v.errf("ike.nat_port", "must be 1..65535")
	case k.NATPort == k.Port:
		v.errf("ike.nat_port", "%d is also port: NAT-T needs its own port (RFC 3947)", k.NATPort)
	}
	if k.LocalID != "" {
		if p := identityProblem(k.LocalID); p != "" {
			v.errf("ike.local_id", "%q: %s", k.LocalID, p)
		}
	}
	certFields := []struct {
		name string
		val  string
	}{{"cert_file", k.CertFile}, {"key_file", k.KeyFile}, {"ca_file", k.CAFile}}
	switch k.Auth {
	case "":
		v.errf("ike.auth", "required: cert or psk")
	case AuthCert:
		for _, x := range certFields {
			f := "ike." + x.name
			if x.val == "" {
				v.errf(f, "required with auth: cert")
				continue
			}
			switch x.name {
			case "key_file":
				if _, ok := v.secret(f, x.val); ok {
					v.pemFile(f, x.val, "PRIVATE KEY")
				}
			default:
				v.pemFile(f, x.val, "CERTIFICATE")
			}
		}
		if k.PSKFile != "" {
			v.errf("ike.psk_file", "only with auth: psk (auth is cert)")
		}
	case AuthPSK:
		for _, x := range certFields {
			if x.val != "" {
				v.errf("ike."+x.name, "only with auth: cert (auth is psk)")
			}
		}
		if k.LocalID == "" {
			v.errf("ike.local_id", "required with auth: psk (like @site1.example.com)")
		}
		if k.PSKFile == "" {
			v.errf("ike.psk_file", "required with auth: psk: a file with the pre-shared key (at least 16 bytes, mode 0600)")
		} else if b, ok := v.secret("ike.psk_file", k.PSKFile); ok && len(bytes.TrimSpace(b)) < 16 {
			v.errf("ike.psk_file", "%q: the key has %d bytes; use at least 16", v.files["ike.psk_file"], len(bytes.TrimSpace(b)))
		}
	}
	v.proposals("ike.proposals", k.Proposals)
	v.proposals("ike.esp_proposals", k.ESPProposals)
	if k.IKELifetime < Duration(time.Minute) {
		v.errf("ike.ike_lifetime", "%s is too short: at least 1m", k.IKELifetime)
	}
	if k.ChildLifetime < Duration(time.Minute) {
		v.errf("ike.child_lifetime", "%s is too short: at least 1m", k.ChildLifetime)
	}
	switch {
	case k.RekeyMargin == 0:
		v.errf("ike.rekey_margin", "must be longer than 0")
	case k.RekeyMargin >= k.ChildLifetime || k.RekeyMargin >= k.IKELifetime:
		v.errf("ike.rekey_margin", "%s must be shorter than child_lifetime (%s) and ike_lifetime (%s)", k.RekeyMargin, k.ChildLifetime, k.IKELifetime)
	}
}

// proposals checks the syntax of strongSwan-style proposals
// ("aes256gcm16-prfsha384-ecp384"); the ike package checks the algorithms.
func (v *validator) proposals(field string, ps []string) {
	seen := map[string]bool{}
	for i, p := range ps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if seen[p] {
			v.errf(f, "%q is listed twice", p)
			continue
		}
		seen[p] = true
		for _, tok := range strings.Split(p, "-") {
			okTok := tok != ""
			for j := 0; j < len(tok); j++ {
				if c := tok[j]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
					okTok = false
				}
			}
			if !okTok {
				v.errf(f, "%q: a proposal is algorithms joined by -, like aes256gcm16-prfsha384-ecp384", p)
				break
			}
		}
	}
}

func (v *validator) bgp() {
	b := v.c.BGP
	if b == nil {
		return
	}
	if b.ASN == 0 && v.ok("bgp.asn") {
		v.errf("bgp.asn", "required: the AS number (1..4294967295), like 65432")
	}
	switch {
	case !b.RouterID.IsValid():
		v.errf("bgp.router_id", "required: an IPv4 address, like 172.16.0.1")
	case !b.RouterID.Is4():
		v.errf("bgp.router_id", "%s: must be an IPv4 address", b.RouterID)
	case b.RouterID.IsUnspecified():
		v.errf("bgp.router_id", "%s is the unspecified address", b.RouterID)
	}
	if b.ListenPort != -1 && (b.ListenPort < 1 || b.ListenPort > 65535) {
		v.errf("bgp.listen_port", "%d: must be 1..65535, or -1 for no listener", b.ListenPort)
	}
	lists := map[string]int{}
	for i, pl := range b.PrefixLists {
		f := fmt.Sprintf("bgp.prefix_lists[%d]", i)
		switch {
		case pl.Name == "":
			v.errf(f+".name", "required")
		case !validName(pl.Name):
			v.errf(f+".name", "%q: use 1 to 32 characters a-z, 0-9 and -", pl.Name)
		default:
			if j, dup := lists[pl.Name]; dup {
				v.errf(f+".name", "%q is already bgp.prefix_lists[%d]", pl.Name, j)
			}
			lists[pl.Name] = i
		}
		if len(pl.Rules) == 0 {
			v.errf(f+".rules", "required: at least one rule")
		}
		for j, r := range pl.Rules {
			rf := fmt.Sprintf("%s.rules[%d]", f, j)
			if r.Action == "" {
				v.errf(rf+".action", "required: permit or deny")
			}
			if !r.Prefix.IsValid() {
				v.errf(rf+".prefix", "required")
				continue
			}
			v.network(rf+".prefix", r.Prefix)
			maxBits := r.Prefix.Addr().BitLen()
			switch {
			case r.GE < r.Prefix.Bits() || r.GE > maxBits:
				v.errf(rf+".ge", "%d: must be %d..%d (from the prefix length to %d)", r.GE, r.Prefix.Bits(), maxBits, maxBits)
			case r.LE < r.GE || r.LE > maxBits:
				v.errf(rf+".le", "%d: must be %d..%d (from ge to %d)", r.LE, r.GE, maxBits, maxBits)
			}
		}
	}
	listNames := make([]string, 0, len(b.PrefixLists))
	for _, pl := range b.PrefixLists {
		if pl.Name != "" {
			listNames = append(listNames, pl.Name)
		}
	}
	ref := func(field, name string) {
		if name != "" && !slices.Contains(listNames, name) {
			v.errf(field, "%q is not defined in bgp.prefix_lists%s", name, defined(listNames))
		}
	}
	addrs := map[netip.Addr]int{}
	for i, n := range b.Neighbors {
		f := fmt.Sprintf("bgp.neighbors[%d]", i)
		if !n.Address.IsValid() {
			v.errf(f+".address", "required")
		} else {
			v.unicast(f+".address", n.Address)
			if j, dup := addrs[n.Address]; dup {
				v.errf(f+".address", "%s is already bgp.neighbors[%d]", n.Address, j)
			}
			addrs[n.Address] = i
		}
		if n.RemoteAS == 0 && v.ok(f+".remote_as") {
			v.errf(f+".remote_as", "required (the same as asn for iBGP)")
		}
		switch {
		case n.HoldTime != 0 && n.HoldTime < Duration(3*time.Second):
			v.errf(f+".hold_time", "%s: must be 0 (no keepalives) or at least 3s (RFC 4271 §4.2)", n.HoldTime)
		case n.HoldTime == 0 && n.Keepalive != 0:
			v.errf(f+".keepalive", "%s: must be 0 when hold_time is 0", n.Keepalive)
		case n.Keepalive >= n.HoldTime && n.HoldTime != 0:
			v.errf(f+".keepalive", "%s must be shorter than hold_time (%s)", n.Keepalive, n.HoldTime)
		}
		if n.PasswordFile != "" {
			pf := f + ".password_file"
			if pw, ok := v.secret(pf, n.PasswordFile); ok && len(bytes.TrimSpace(pw)) > 80 {
				v.errf(pf, "%q: the password has %d bytes; TCP-MD5 allows at most 80", v.files[pf], len(bytes.TrimSpace(pw)))
			}
		}
		ref(f+".import", n.Import)
		ref(f+".export", n.Export)
	}
	nets := map[netip.Prefix]int{}
	for i, p := range b.Networks {
		f := fmt.Sprintf("bgp.networks[%d]", i)
		v.network(f, p)
		if j, dup := nets[p]; dup {
			v.errf(f, "%s is already bgp.networks[%d]", p, j)
		}
		nets[p] = i
	}
	srcs := map[RedistSource]int{}
	for i, r := range b.Redistribute {
		f := fmt.Sprintf("bgp.redistribute[%d]", i)
		if r.Source == "" {
			v.errf(f+".source", "required: connected, static or kernel")
		} else if j, dup := srcs[r.Source]; dup {
			v.errf(f+".source", "%s is already bgp.redistribute[%d]", r.Source, j)
		}
		srcs[r.Source] = i
		ref(f+".prefix_list", r.PrefixList)
	}
	switch {
	case b.FIB.Table == 0:
		v.errf("bgp.fib.table", "must be 1..4294967295 (254 is main)")
	case b.FIB.Table == 255:
		v.errf("bgp.fib.table", "255 is the kernel's local table")
	}
	if b.FIB.Protocol <= 4 {
		v.errf("bgp.fib.protocol", "%d is reserved by the kernel (0-4); 186 is bgp", b.FIB.Protocol)
	}
}

// network reports a prefix with host bits set.
func (v *validator) network(field string, p netip.Prefix) {
	if p != p.Masked() {
		v.errf(field, "%s has host bits set; did you mean %s?", p, p.Masked())
	}
}

func (v *validator) stateSync() {
	s := v.c.StateSync
	if s == nil {
		return
	}
	cl := v.c.Cluster
	if cl == nil {
		v.errf("statesync", "needs the cluster section: state is synced to the cluster's peers")
		return
	}
	var names []string
	for _, l := range cl.Links {
		if l.Name != "" {
			names = append(names, l.Name)
		}
	}
	if s.Link == "" {
		v.errf("statesync.link", "required: the name of a cluster link (not a serial one)%s", defined(names))
	} else if i := slices.IndexFunc(cl.Links, func(l Link) bool { return l.Name == s.Link }); i < 0 {
		v.errf("statesync.link", "%q is not defined in cluster.links%s", s.Link, defined(names))
	} else if cl.Links[i].Serial != "" {
		v.errf("statesync.link", "%q is a serial link; state sync needs an IP link", s.Link)
	}
	switch {
	case s.Port == 0:
		v.errf("statesync.port", "must be 1..65535")
	case s.Port == cl.Port:
		v.errf("statesync.port", "%d is also cluster.port", s.Port)
	}
	if s.Interval < Duration(10*time.Millisecond) {
		v.errf("statesync.interval", "%s is too short: at least 10ms", s.Interval)
	}
	if s.SeqMargin == 0 {
		v.errf("statesync.seq_margin", "must be more than 0")
	}
}
