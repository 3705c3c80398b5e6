package nfstate

import (
	"sort"
	"strings"
)

// Query is where a packet died, as far as the probes saw.
type Query struct {
	Family string // of the packet: ipv4, ipv6
	Hook   string // PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING; "" unknown
	Iface  string // the device the packet was on
	// Bracket is the table whose netfilter link bracket the packet
	// passed last (the path's "reached table X"): Reader turns it into
	// Lo.
	Bracket string
	// Lo < priority <= Hi bounds the chains of the ip/ip6/inet families
	// (netfilter link brackets) when Bounded.
	Lo, Hi  int32
	Bounded bool
	// Table and Chain are exact names from a probe in the table's hook
	// function (nft_do_chain, ipt_do_table); "" unknown.
	Table, Chain string
}

// Finding is what the state says about one drop.
type Finding struct {
	// Candidates are the base chains that could have dropped the packet:
	// they sit at its hook (and priority), and a rule or their policy can
	// drop. All is every base chain at that place, droppers or not.
	Candidates, All []*Chain
	// Deciders of each candidate (same index): the rules reachable from it
	// that drop or reject.
	Deciders [][]Decider
	// Bridge is the bridge when the packet was on one of its ports.
	Bridge string
	Ports  []string
	// BrNetfilter: bridged traffic passes the ip hooks (br_netfilter).
	BrNetfilter bool
	// Docker: Docker's chains exist in the namespace.
	Docker bool
	// Note says what could not be read.
	Note string
}

// Decider is a rule that drops or rejects, and the chain it is in.
type Decider struct {
	Chain *Chain
	Rule  Rule
	Via   []Rule // the jumps from the base chain to Chain
}

// Find answers q from the state.
func (s *State) Find(q Query) *Finding {
	f := &Finding{Docker: s.HasDocker(), Note: s.Note}
	if l, ok := s.Links[q.Iface]; ok && l.MasterKind == "bridge" {
		f.Bridge = l.Master
		for _, p := range s.Links {
			if p.Master == l.Master {
				f.Ports = append(f.Ports, p.Name)
			}
		}
		sort.Strings(f.Ports)
		f.BrNetfilter = s.BrNetfilter[q.Family]
	}
	hook := strings.ToLower(q.Hook)
	for _, c := range s.Chains {
		if !c.Base || !s.fits(c, q, f, hook) {
			continue
		}
		f.All = append(f.All, c)
		d := s.deciders(c)
		if len(d) > 0 || c.Policy == "drop" {
			f.Candidates = append(f.Candidates, c)
			f.Deciders = append(f.Deciders, d)
		}
	}
	return f
}

func (s *State) fits(c *Chain, q Query, f *Finding, hook string) bool {
	if q.Table != "" && q.Chain != "" {
		// Named by the probe: the path's last hook may be an earlier
		// one (a bridge's forward hook records no step before it drops).
		return c.Table == q.Table && c.Name == q.Chain
	}
	if q.Table != "" {
		return c.Table == q.Table && (hook == "" || c.Hook == hook)
	}
	ipFams := map[string]bool{"inet": true}
	switch q.Family {
	case "ipv4":
		ipFams["ip"] = true
	case "ipv6":
		ipFams["ip6"] = true
	}
	switch {
	case c.Family == "bridge":
		// A bridge-family chain sees only bridged frames; the ip hooks
		// of such a packet are those br_netfilter runs, at the same
		// hook numbers.
		return f.Bridge != "" && (hook == "" || c.Hook == hook || q.Bounded)
	case c.Family == "netdev":
		// Before (ingress) or after (egress) every IP hook, on one device.
		return hook == "" && (c.Device == "" || q.Iface == "" || c.Device == q.Iface)
	case c.Family == "arp":
		return q.Family == ""
	case ipFams[c.Family]:
		if f.Bridge != "" && !f.BrNetfilter && hook == "" {
			return false // bridged, and the ip hooks are not called for it
		}
		if hook != "" && c.Hook != hook {
			return false
		}
		return !q.Bounded || (c.Prio > q.Lo && c.Prio <= q.Hi)
	}
	return false
}

// deciders walks the rules reachable from c (jumps and gotos) and returns
// those that drop or reject, each with the jumps that lead to it.
func (s *State) deciders(c *Chain) []Decider {
	var out []Decider
	// A chain is walked once per way in (Docker jumps to its isolation
	// chain once per network), never into itself; bounded for rule sets
	// of tens of thousands of rules.
	onStack := map[*Chain]bool{}
	var walk func(c *Chain, via []Rule)
	walk = func(c *Chain, via []Rule) {
		if c == nil || onStack[c] || len(out) > maxDeciders || len(via) > 16 {
			return
		}
		onStack[c] = true
		defer delete(onStack, c)
		for _, r := range c.Rules {
			switch r.Verdict {
			case "drop", "reject", "vmap":
				out = append(out, Decider{Chain: c, Rule: r, Via: via})
			case "jump", "goto":
				walk(s.chain(c.Family, c.Table, r.Target), append(via[:len(via):len(via)], r))
			}
		}
	}
	walk(c, nil)
	return out
}

const maxDeciders = 4096

// Kinds of a candidate's deciders.
func Kinds(d []Decider) (drop, reject, invalid, other int) {
	for _, x := range d {
		switch {
		case x.Rule.Invalid:
			invalid++
		case x.Rule.Verdict == "reject":
			reject++
		case x.Rule.Verdict == "drop":
			drop++
		default:
			other++
		}
	}
	return
}

// unique keeps one decider per rule (a rule reached by several jumps).
func unique(d []Decider) []Decider {
	type key struct {
		c *Chain
		h uint64
		t string
	}
	seen := map[key]bool{}
	var out []Decider
	for _, x := range d {
		k := key{x.Chain, x.Rule.Handle, x.Rule.Text}
		if !seen[k] {
			seen[k] = true
			out = append(out, x)
		}
	}
	return out
}

// Owners are the owners of the chains the deciders sit in ("" for
// none), in order of first appearance.
func Owners(d []Decider) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range d {
		o := Owner(x.Chain.Table, x.Chain.Name)
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}
