package testnet

import "strings"

// Link connects a and b with a veth pair aIf<->bIf, assigns the addresses
// (CIDR notation; "" for none, e.g. for a bridge port) and sets both ends
// up. The pair is created directly in its namespaces so the ends pick up
// each namespace's default devconf and never appear in the host namespace.
func (n *Net) Link(a *NS, aIf, aAddr string, b *NS, bIf, bAddr string) {
	n.tb.Helper()
	a.MustRun("ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name)
	for _, e := range []struct {
		ns       *NS
		dev, adr string
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if e.adr != "" {
			e.ns.Addr(e.dev, e.adr)
		}
		e.ns.MustRun("ip", "link", "set", e.dev, "up")
	}
}

// Addr adds an address (CIDR) to dev. IPv6 addresses skip duplicate
// address detection so they are usable at once instead of after ~2s.
func (ns *NS) Addr(dev, cidr string) {
	ns.net.tb.Helper()
	args := []string{"ip", "addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = []string{"ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"}
	}
	ns.MustRun(args...)
}

// Route runs "ip route add <args>" (or "ip -6 route add" when the first
// argument is an IPv6 prefix), failing the test on error.
func (ns *NS) Route(args ...string) {
	ns.net.tb.Helper()
	cmd := []string{"ip", "route", "add"}
	if len(args) > 0 && strings.Contains(args[0], ":") {
		cmd = []string{"ip", "-6", "route", "add"}
	}
	ns.MustRun(append(cmd, args...)...)
}
