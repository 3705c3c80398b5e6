// Package nfstate reads, without changing anything, the netfilter tables of
// one network namespace: nf_tables base chains with their hook, priority
// and policy, the rules reachable from them (what they decide, whether they
// reject or match conntrack INVALID, their text without counters), the
// iptables-legacy tables, and the links (to tell bridged traffic). Package
// cause asks it which tables could have dropped a packet, so that it names
// only tables that exist, and a policy only when it is DROP.
package nfstate

import (
	"strings"
)

// State is the netfilter state of one network namespace.
type State struct {
	Chains []*Chain
	// Links by name: their kind and the bridge they are a port of.
	Links map[string]Link
	// BrNetfilter: br_netfilter passes bridged IPv4/IPv6 traffic through
	// the ip/ip6 hooks (bridge-nf-call-iptables/ip6tables = 1).
	BrNetfilter map[string]bool // "ipv4", "ipv6"
	// Note says what could not be read.
	Note string
}

// Chain is one chain of nf_tables or of iptables-legacy.
type Chain struct {
	Family string // ip, ip6, inet, bridge, netdev, arp
	Table  string
	Name   string
	Base   bool
	Hook   string // nft hook name (prerouting, input, forward, ...)
	Prio   int32
	Policy string // accept, drop ("" for regular chains)
	Device string // the device of a netdev-family chain
	Rules  []Rule
	// Backend is "nft" for native nf_tables, "iptables-nft" for tables
	// written by iptables-nft (rule text in iptables-save form) and
	// "iptables-legacy" for x_tables.
	Backend string
}

// Rule is one rule: what it decides and how it reads.
type Rule struct {
	Handle uint64 // nf_tables handle; iptables-legacy: position in the chain
	Text   string // nft syntax or iptables-save form, without counters; "" when unknown
	// Verdict: drop, reject, accept, jump, goto, return, queue, or "" (the
	// rule only continues).
	Verdict string
	Target  string // the chain jumped to
	Reject  string // how a reject answers: "icmp port-unreachable", "tcp reset", ...
	Invalid bool   // matches conntrack state INVALID
}

// Link is one network device of the namespace.
type Link struct {
	Name, Kind string
	Master     string // the bridge (or bond, VRF) it belongs to
	MasterKind string
}

// Ref names a chain as nft does: "ip filter FORWARD".
func (c *Chain) Ref() string { return c.Family + " " + c.Table + " " + c.Name }

func (s *State) chain(family, table, name string) *Chain {
	for _, c := range s.Chains {
		if c.Family == family && c.Table == table && c.Name == name {
			return c
		}
	}
	return nil
}

// Owner names the software that manages a chain or table by its name
// ("" for none known): a hint must point at that software's object, as
// a rule removed by hand comes back.
func Owner(table, chain string) string {
	switch {
	case strings.HasPrefix(chain, "KUBE-") || strings.HasPrefix(table, "kube-proxy"):
		return "kube-proxy"
	case chain == "DOCKER-USER":
		return "" // Docker's place for the user's own rules
	case strings.HasPrefix(chain, "DOCKER"):
		return "Docker"
	case strings.HasPrefix(chain, "cali-") || strings.HasPrefix(table, "calico"):
		return "Calico"
	case strings.HasPrefix(strings.ToUpper(chain), "CILIUM") || strings.HasPrefix(table, "cilium"):
		return "Cilium"
	case strings.HasPrefix(chain, "FLANNEL"):
		return "flannel"
	}
	return ""
}

// HasDocker tells whether Docker's chains exist.
func (s *State) HasDocker() bool {
	for _, c := range s.Chains {
		if c.Name == "DOCKER-USER" || strings.HasPrefix(c.Name, "DOCKER-ISOLATION-STAGE-") || c.Name == "DOCKER-FORWARD" {
			return true
		}
	}
	return false
}
