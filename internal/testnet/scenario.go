package testnet

// Stable cause ids shared with the drop tracer's tests.
const (
	CauseNetfilter          = "netfilter"
	CauseForwardingDisabled = "forwarding_disabled"
	CauseNoRoute            = "no_route"
	CauseRPFilter           = "rp_filter"
	CauseNoSocket           = "no_socket"
)

// Scenario is one reproduction: a built topology plus the traffic that
// exercises it and what pktdrop should report about that traffic.
type Scenario struct {
	Name string
	Net  *Net
	// Client sends the traffic, Router is the middle box (nil when the
	// client talks to the server directly), Server is the intended
	// destination.
	Client, Router, Server *NS
	// Others holds further namespaces by short name, e.g. the Traefik pod
	// that shadows the intended server in DNATShadowed.
	Others map[string]*NS
	// Trigger sends the traffic. For drop scenarios it returns an error if
	// the traffic got through (the reproduction is broken); for the
	// no-drop scenarios it returns an error if it did not arrive where
	// the field case says it does.
	Trigger func() error
	Expect  Expect
	// Notes records how this run was built when the constructor had to
	// choose (e.g. real IPIP tunl0 or a veth named tunl0).
	Notes []string
}

// Expect is what pktdrop should report for a scenario's traffic.
type Expect struct {
	// Drop is false for the scenarios where nothing is dropped and the
	// point is the path taken (DNATShadowed, DNATBridge).
	Drop bool
	// Reason is the skb drop reason name without prefix (NETFILTER_DROP)
	// as 6.18 reports it; only meaningful on kernels with drop reasons.
	Reason string
	// Location is the function kfree_skb reported on 6.18 (nft_do_chain).
	// Older kernels may drop elsewhere (e.g. nf_hook_slow on 5.10).
	Location string
	// Cause is one of the Cause* ids.
	Cause string
	// Netns is the full name of the namespace the drop happens in.
	Netns string
	// Iface is the device the dropped packet arrived on.
	Iface string
	// Hook, Table and Chain locate a netfilter verdict (FORWARD, filter,
	// FORWARD); Policy is true when the chain policy, not a rule, dropped.
	Hook, Table, Chain string
	Policy             bool
	// Rule is the dropping rule in iptables-save form when Policy is
	// false, and RuleIndex its position in Chain.
	Rule      string
	RuleIndex int
	// Sysctl names the setting behind the drop as "key=value", the key
	// in /proc/sys form with dots (net.ipv4.conf.tunl0.rp_filter=1).
	Sysctl string
	// Counter is the nstat counter that the drop increments in Netns.
	Counter string
	// Src, Dst (addresses) and Proto (icmp, icmpv6, udp, tcp) identify the
	// dropped or traced packet; DstPort is 0 for ICMP.
	Src, Dst, Proto string
	DstPort         int
	// NAT lists the translations the traced packet undergoes, in order.
	NAT []NAT
	// Shadowed is a rule that looks like it should match but never does,
	// because an earlier rule translated the packet first.
	Shadowed string
	// Facts are the deciding facts of the cause, as the scenario built
	// them (the route's type and table, the MTU, the next hop), keyed
	// by pktdrop's evidence names.
	Facts map[string]string
	// Path and ReplyPath list the devices and hooks crossed, for the
	// trace scenarios; a "conntrack" step means the reply is translated
	// by conntrack, not by a nat-table rule.
	Path, ReplyPath []string
}

// NAT is one address/port translation and the rule that made it.
type NAT struct {
	Hook, Table string
	// Chains is the jump path from the base chain to the chain holding
	// the translating rule, e.g. PREROUTING, KUBE-SERVICES, ..., KUBE-SEP-X.
	Chains []string
	// Comment is the rule's -m comment text, if any.
	Comment  string
	From, To string
}
