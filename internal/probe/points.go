// Package probe loads pktdrop's BPF programs onto the running kernel: for
// each probe point it tries the mechanisms in order of preference and
// keeps the first the kernel accepts, remembering why the others failed.
package probe

// Mechanism is how a program is attached.
type Mechanism string

const (
	TPBTF      Mechanism = "tp_btf"
	Tracepoint Mechanism = "tracepoint"
	Fentry     Mechanism = "fentry/fexit"
	Kprobe     Mechanism = "kprobe"
	NFLink     Mechanism = "netfilter link"
)

// option is one way to cover a probe point: all of progs must load and
// attach for it to count (an entry/exit pair is useless half-attached).
type option struct {
	mech  Mechanism
	progs []prog
	// fits, when set, says whether the programs match this kernel's
	// function signature (and if not, why).
	fits func() (bool, string)
}

type prog struct {
	name   string // program in the BPF object
	target string // function or tracepoint; "group/name" for tracepoints
	ret    bool   // fexit or kretprobe
	module bool   // target is in a module: its BTF is split from vmlinux's
}

// Point is a place in the kernel pktdrop watches.
type Point struct {
	Name     string
	Why      string // what the point adds, for `pktdrop probes`
	Required bool   // without it pktdrop cannot work at all
	Path     bool   // only needed for path reconstruction
	options  []option
}

func tp(name, target string) option {
	return option{mech: Tracepoint, progs: []prog{{name: name, target: target}}}
}

func btfTP(name, target string) option {
	return option{mech: TPBTF, progs: []prog{{name: name, target: target}}}
}

func fentry(fn string) option {
	return option{mech: Fentry, progs: []prog{{name: "fentry_" + fn, target: fn}}}
}

func kprobe(fn string) option {
	return option{mech: Kprobe, progs: []prog{{name: "kprobe_" + fn, target: fn}}}
}

// Points lists every probe point, best mechanism first. The netfilter
// hooks are last because links are the fallback there and are attached
// per network namespace (see AttachNetfilter).
func Points() []Point {
	return []Point{
		{Name: "kfree_skb", Why: "the drop, its reason and location", Required: true, options: []option{
			btfTP("tpb_kfree_skb_sk", "kfree_skb"),
			btfTP("tpb_kfree_skb", "kfree_skb"),
			btfTP("tpb_kfree_skb_noreason", "kfree_skb"),
			tp("tp_kfree_skb", "skb/kfree_skb"),
		}},
		{Name: "consume_skb", Why: "the normal end of a followed packet (trace)", Path: true, options: []option{
			btfTP("tpb_consume_skb", "consume_skb"),
			tp("tp_consume_skb", "skb/consume_skb"),
		}},
		{Name: "netif_receive_skb", Why: "device ingress", Path: true, options: []option{
			btfTP("tpb_netif_receive_skb", "netif_receive_skb"),
			tp("tp_netif_receive_skb", "net/netif_receive_skb"),
		}},
		{Name: "ip_rcv", Why: "IPv4 input", Path: true, options: []option{fentry("ip_rcv"), kprobe("ip_rcv")}},
		{Name: "ipv6_rcv", Why: "IPv6 input", Path: true, options: []option{fentry("ipv6_rcv"), kprobe("ipv6_rcv")}},
		{Name: "nf_hook_slow", Why: "netfilter hook and verdict", Path: true, options: []option{
			{mech: Fentry, progs: []prog{{name: "fentry_nf_hook_slow", target: "nf_hook_slow"},
				{name: "fexit_nf_hook_slow", target: "nf_hook_slow", ret: true}}},
			{mech: Kprobe, progs: []prog{{name: "kprobe_nf_hook_slow", target: "nf_hook_slow"},
				{name: "kretprobe_nf_hook_slow", target: "nf_hook_slow", ret: true}}},
		}},
		{Name: "nft_do_chain", Why: "the nf_tables table and base chain that dropped a packet", Path: true, options: []option{
			{mech: Fentry, progs: []prog{{name: "fentry_nft_do_chain", target: "nft_do_chain", module: true},
				{name: "fexit_nft_do_chain", target: "nft_do_chain", ret: true, module: true}}},
		}},
		{Name: "ipt_do_table", Why: "the iptables-legacy table that dropped a packet", Path: true, options: []option{
			{mech: Fentry, progs: []prog{{name: "fexit_ipt_do_table", target: "ipt_do_table", ret: true, module: true}},
				fits: firstParam("ipt_do_table", "priv")},
			{mech: Fentry, progs: []prog{{name: "fexit_ipt_do_table_old", target: "ipt_do_table", ret: true, module: true}},
				fits: firstParam("ipt_do_table", "skb")},
		}},
		{Name: "fib_table_lookup", Why: "route lookups and their result", Path: true, options: []option{
			btfTP("tpb_fib_table_lookup", "fib_table_lookup"),
		}},
		{Name: "fib6_table_lookup", Why: "IPv6 route lookups and their result", Path: true, options: []option{
			btfTP("tpb_fib6_table_lookup", "fib6_table_lookup"),
		}},
		{Name: "fib_validate_source", Why: "reverse path (rp_filter) check failures", Path: true, options: []option{
			{mech: Kprobe, progs: []prog{{name: "kprobe_fib_validate_source", target: "fib_validate_source"},
				{name: "kretprobe_fib_validate_source", target: "fib_validate_source", ret: true}}},
		}},
		{Name: "ip_forward", Why: "IPv4 forwarding", Path: true, options: []option{fentry("ip_forward"), kprobe("ip_forward")}},
		{Name: "ip6_forward", Why: "IPv6 forwarding", Path: true, options: []option{fentry("ip6_forward"), kprobe("ip6_forward")}},
		{Name: "ip_output", Why: "IPv4 output", Path: true, options: []option{fentry("ip_output"), kprobe("ip_output")}},
		{Name: "ip6_output", Why: "IPv6 output", Path: true, options: []option{fentry("ip6_output"), kprobe("ip6_output")}},
		// One egress step per device: queue and transmit follow each
		// other for nearly every packet, and a probe run on every packet
		// of the machine is what a filter that matches nothing costs. A
		// packet the qdisc drops is still named by its drop event.
		{Name: "net_dev_start_xmit", Why: "device egress", Path: true, options: []option{
			btfTP("tpb_net_dev_start_xmit", "net_dev_start_xmit"),
			btfTP("tpb_net_dev_queue", "net_dev_queue"),
			tp("tp_net_dev_queue", "net/net_dev_queue"),
		}},
	}
}
