// Package cause names why a packet was dropped, in plain words, with the
// evidence and the fix. It works from the kernel's drop reason where there
// is one, and from the drop location, the path and the system's own
// settings where there is not (kernels before 5.17).
package cause

import (
	"net"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
)

// System answers questions about a network namespace at the time of the
// drop. *netns.Resolver implements it; tests use a fake.
type System interface {
	Sysctl(inode uint32, key string) (string, error)
	RouteGet(inode uint32, dst net.IP, opts netns.RouteOptions) (netns.Route, error)
}

// Infer fills r's Cause, Explanation, Hint and Evidence.
func Infer(r *report.Report, sys System) {
	if r.Kind != "drop" {
		return
	}
	name := r.Reason
	if name == "" || name == "NOT_SPECIFIED" {
		name = fromLocation(r)
	}
	if rule, ok := rules[name]; ok {
		rule(r, sys)
	} else {
		r.Cause = strings.ToLower(name)
		if r.Cause == "" {
			r.Cause = "unknown"
		}
		r.Explanation = "the kernel dropped it with reason " + name
		if name == "" {
			r.Explanation = "the kernel dropped it in " + r.Location + " without saying why"
		}
	}
}

// locations maps the function that freed the packet to the reason newer
// kernels would have given. Only functions whose drops mean one thing.
var locations = []struct{ fn, reason string }{
	{"nft_do_chain", "NETFILTER_DROP"},
	{"ipt_do_table", "NETFILTER_DROP"},
	{"ip6t_do_table", "NETFILTER_DROP"},
	{"nf_hook_slow", "NETFILTER_DROP"},
	{"ebt_do_table", "NETFILTER_DROP"},
	{"ip_error", "ip_error"},
	{"ip6_pkt_drop", "IP_INNOROUTES"},
	{"dst_discard_out", "dst_discard"},
	{"dst_discard", "dst_discard"},
	{"ip_rcv_finish_core", "ip_rcv_finish_core"},
	{"__udp4_lib_rcv", "udp_rcv"},
	{"__udp6_lib_rcv", "udp_rcv"},
	{"tcp_v4_rcv", "tcp_rcv"},
	{"tcp_v6_rcv", "tcp_rcv"},
	{"neigh_invalidate", "NEIGH_FAILED"},
	{"arp_error_report", "NEIGH_FAILED"},
	{"ndisc_error_report", "NEIGH_FAILED"},
	{"ip_forward", "ip_forward"},
	{"ip6_forward", "ip_forward"},
	{"__neigh_event_send", "NEIGH_QUEUEFULL"},
	{"sk_filter_trim_cap", "SOCKET_FILTER"},
	{"__udp_queue_rcv_skb", "SOCKET_RCVBUFF"},
	{"udp_queue_rcv_one_skb", "udp_queue"},
	{"udpv6_queue_rcv_one_skb", "udp_queue"},
	{"__dev_queue_xmit", "QDISC_DROP"},
	{"enqueue_to_backlog", "CPU_BACKLOG"},
	{"sch_handle_ingress", "TC_INGRESS"},
	{"sch_handle_egress", "TC_EGRESS"},
	{"__netif_receive_skb_core", "netif_receive_core"},
}

func fromLocation(r *report.Report) string {
	fn, _, _ := strings.Cut(r.Location, "+")
	for _, l := range locations {
		if fn == l.fn || strings.HasPrefix(fn, l.fn+".") {
			return l.reason
		}
	}
	return r.Reason
}

type rule func(*report.Report, System)

var rules = map[string]rule{
	"NETFILTER_DROP":     netfilter,
	"IP_RPFILTER":        rpFilter,
	"ip_rcv_finish_core": rcvFinish,
	"IP_INADDRERRORS":    addrErrors,
	"IP_INNOROUTES":      noRoute,
	"ip_error":           ipError,
	"dst_discard":        dstDiscard,
	"netif_receive_core": receiveCore,
	"NO_SOCKET":          noSocket,
	"udp_rcv":            noSocket,
	"tcp_rcv":            noSocket,
	"OTHERHOST":          fixed("otherhost", "the frame was addressed to another host's MAC address (PACKET_OTHERHOST), so IP never looked at it", "check the destination MAC (ARP/ND cache of the sender) or why this interface is promiscuous"),
	"TCP_CSUM":           fixed("checksum", "the TCP checksum is wrong", "look for checksum offload problems on the sending side (`ethtool -K <dev> tx off` to test) or a middlebox that rewrites packets"),
	"UDP_CSUM":           fixed("checksum", "the UDP checksum is wrong", "look for checksum offload problems on the sending side (`ethtool -K <dev> tx off` to test)"),
	"IP_CSUM":            fixed("checksum", "the IP header checksum is wrong", "find what corrupts or rewrites the header on the way"),
	"ICMP_CSUM":          fixed("checksum", "the ICMP checksum is wrong", "find what corrupts the packet on the way"),
	"SOCKET_RCVBUFF":     rcvBufFull,
	"udp_queue":          udpQueue,
	"PROTO_MEM":          fixed("socket_buffer_full", "the protocol's memory limit was reached (tcp_mem/udp_mem)", "raise net.ipv4.tcp_mem / udp_mem or find the sockets holding memory (`ss -m`)"),
	"SOCKET_BACKLOG":     fixed("socket_buffer_full", "the socket backlog was full", "make the application read faster or raise its receive buffer"),
	"NEIGH_FAILED":       neighFailed,
	"ip_forward":         forwardDrop,
	"NEIGH_QUEUEFULL":    fixed("neighbour", "too many packets waited for ARP/ND resolution of the next hop", "check that the next hop answers ARP/ND; raise gc_thresh/unres_qlen_bytes if resolution is just slow"),
	"NEIGH_DEAD":         fixed("neighbour", "the neighbour entry for the next hop was being removed", "check the link to the next hop"),
	"NEIGH_CREATEFAIL":   fixed("neighbour", "no neighbour entry could be created (neighbour table full?)", "raise net.ipv4.neigh.default.gc_thresh3 or find what fills the table"),
	"IP_OUTNOROUTES":     fixed("no_route", "no route for a locally generated packet", "add a route to the destination (`ip route get <dst>` in that netns shows the failure)"),
	"PKT_TOO_BIG":        pktTooBig,
	"IP_INHDR":           inHdr,
	"QDISC_DROP":         fixed("queue_full", "the device's queueing discipline dropped it (queue full)", "look at `tc -s qdisc show dev <dev>`; raise the queue length or find the congestion"),
	"CPU_BACKLOG":        fixed("queue_full", "the per-CPU input backlog was full", "raise net.core.netdev_max_backlog or spread the load (RPS)"),
	"TC_INGRESS":         tcDrop("ingress"),
	"TC_EGRESS":          tcDrop("egress"),
	"XDP":                fixed("xdp", "an XDP program dropped it", "see `ip link show <dev>` for the attached XDP program"),
	"SOCKET_FILTER":      fixed("socket_filter", "a socket filter (BPF on the socket) rejected it", "check the application's SO_ATTACH_FILTER program"),
	"IPV6DISABLED":       fixed("ipv6_disabled", "IPv6 is disabled on the device", "enable it: sysctl -w net.ipv6.conf.<dev>.disable_ipv6=0"),
	"UNHANDLED_PROTO":    fixed("unhandled_proto", "no protocol handler for this packet type", "nothing on this host handles that protocol"),
	"IP_NOPROTO":         fixed("unhandled_proto", "no handler for this IP protocol", "load the protocol's module or fix the sender"),
}

func fixed(cause, explanation, hint string) rule {
	return func(r *report.Report, _ System) {
		r.Cause, r.Explanation, r.Hint = cause, explanation, hint
	}
}

func evidence(r *report.Report, k, v string) {
	if r.Evidence == nil {
		r.Evidence = map[string]string{}
	}
	r.Evidence[k] = v
}

// where says where it happened, e.g. `on eth0 in netns router`.
func where(r *report.Report) string {
	s := ""
	if r.Iface != "" {
		s = "on " + r.Iface
	}
	if r.NetnsName != "" {
		if s != "" {
			s += " "
		}
		if r.Owned() {
			s += "in " + r.NetnsName // "pod shop/web"
		} else {
			s += "in netns " + r.NetnsName
		}
	}
	return s
}
