package nftrace

import (
	"net/netip"
	"time"
)

// Match selects the packets to trace. Zero fields match anything. The lead
// maps pktdrop's filter into it.
type Match struct {
	Family uint8 // 4, 6 or 0 (both); CIDRs imply it
	Proto  uint8 // IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6), 0 = any
	Src    netip.Prefix
	Dst    netip.Prefix
	Host   netip.Prefix // source or destination
	Sport  uint16
	Dport  uint16
	Port   uint16 // source or destination port
}

// Options configure Start.
type Options struct {
	// Netns lists nsfs paths (/var/run/netns/NAME, /proc/PID/ns/net).
	// Empty means only the current network namespace.
	Netns []string
	Match Match
	// Idle flushes a packet's events after this long without a new one
	// (default 200ms).
	Idle time.Duration
}

// Tuple is the packet as the first traced chain saw it.
type Tuple struct {
	Family   string     `json:"family"` // ip or ip6
	Proto    uint8      `json:"proto"`
	Src      netip.Addr `json:"src"`
	Dst      netip.Addr `json:"dst"`
	Sport    uint16     `json:"sport,omitempty"`
	Dport    uint16     `json:"dport,omitempty"`
	ICMPType uint8      `json:"icmp_type,omitempty"`
	ICMPCode uint8      `json:"icmp_code,omitempty"`
	ICMPID   uint16     `json:"icmp_id,omitempty"`
	ICMPSeq  uint16     `json:"icmp_seq,omitempty"`
}

// Step is one trace event: a rule that returned a verdict (type rule), the
// end of a chain's rules (end), a return from a jumped-to chain (return) or
// a base chain's policy (policy).
type Step struct {
	Hook         string `json:"hook"`
	Family       string `json:"family"` // table family
	Table        string `json:"table"`
	Chain        string `json:"chain"`
	Type         string `json:"type"` // rule, end, return, policy
	RuleHandle   uint64 `json:"handle,omitempty"`
	Verdict      string `json:"verdict"`
	VerdictChain string `json:"verdict_chain,omitempty"`
}

// NATRule is a rule in a nat-type chain that translated the packet
// (dnat/snat/masquerade/redirect, verdict accept).
type NATRule struct {
	Hook         string `json:"hook"`
	Family       string `json:"family"`
	Table        string `json:"table"`
	Chain        string `json:"chain"`
	RuleHandle   uint64 `json:"handle"`
	Rule         string `json:"rule,omitempty"`
	IptablesRule string `json:"iptables_rule,omitempty"`
	// After is the tuple the next base chain saw, when known.
	After *Tuple `json:"after,omitempty"`
}

// Decision is what nf_tables did with one packet in one network namespace.
type Decision struct {
	Netns      string    `json:"netns"`
	NetnsInode uint32    `json:"netns_inode"`
	TraceID    uint32    `json:"trace_id"`
	Family     string    `json:"family"` // ip or ip6
	Hook       string    `json:"hook"`   // hook of the deciding step
	In         string    `json:"in,omitempty"`
	Out        string    `json:"out,omitempty"`
	Tuple      Tuple     `json:"tuple"`
	Time       time.Time `json:"time"`
	Steps      []Step    `json:"steps"`
	// Verdict is accept, drop, reject, queue or stolen.
	Verdict string `json:"verdict"`
	// Kind is rule or policy: whether a rule or the chain's policy decided.
	Kind         string `json:"kind"`
	Table        string `json:"table"`
	TableFamily  string `json:"table_family"`
	Chain        string `json:"chain"`
	RuleHandle   uint64 `json:"handle,omitempty"`
	Rule         string `json:"rule,omitempty"`          // nft syntax
	IptablesRule string `json:"iptables_rule,omitempty"` // iptables-save syntax
	// RuleTextNote says why Rule is empty for a rule decision.
	RuleTextNote string    `json:"rule_text_note,omitempty"`
	NAT          []NATRule `json:"nat,omitempty"`
}
