// Package benign tells packets the kernel frees after they reached where
// they were going (or as housekeeping) from packets lost on their way.
// The kernel passes a drop reason, or on old kernels only a location, for
// both; a free is called benign only when a fact shows that the packet
// arrived: the socket that held it and its state (read by BPF at the
// free), a copy delivered to a raw socket, or a socket of the connection
// that still exists in that namespace.
package benign

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/report"
)

// Sockets answers what sockets exist in a network namespace now.
type Sockets interface {
	// RawICMP says whether a raw socket of ICMP (v6: ICMPv6) is open.
	RawICMP(netns uint32, v6 bool) (bool, error)
	// Joined6 says whether device dev has joined IPv6 multicast group.
	Joined6(netns uint32, dev string, group netip.Addr) (bool, error)
	// Sysctl reads a sysctl ("net.ipv6.icmp.echo_ignore_all").
	Sysctl(netns uint32, key string) (string, error)
	// TCPState is the state of the TCP socket with these local and remote
	// addresses ("" when there is none).
	TCPState(netns uint32, local, remote string, lport, rport uint16) (string, error)
}

// rawMemory is how long a raw ICMP socket seen in a namespace counts as
// still there: ping exits right after its last reply, before userspace
// can look, and the reply was delivered all the same.
const rawMemory = 10 * time.Second

// Classifier marks benign frees in reports.
type Classifier struct {
	socks Sockets
	// states names TCP states (kernel values); it may be nil until the
	// kernel's BTF is read.
	states func() map[uint8]string
	now    func() time.Time

	mu      sync.Mutex
	rawSeen map[rawKey]time.Time
}

type rawKey struct {
	netns uint32
	v6    bool
}

// New returns a Classifier asking socks about sockets.
func New(socks Sockets, states func() map[uint8]string) *Classifier {
	return &Classifier{socks: socks, states: states, now: time.Now, rawSeen: map[rawKey]time.Time{}}
}

// Classify sets r.Benign and r.BenignWhy when ev, a drop, is a benign
// free.
func (c *Classifier) Classify(ev *event.Event, r *report.Report) {
	if r.Kind != "drop" {
		return
	}
	why := c.why(ev, r)
	if why == "" {
		return
	}
	// The cause inferred from the reason or location alone ("nothing
	// listens ...") would send the user to fix what is not broken.
	r.Benign, r.BenignWhy = true, why
	r.Cause, r.Explanation, r.Hint, r.Evidence = "benign", why, "", nil
}

func (c *Classifier) why(ev *event.Event, r *report.Report) string {
	fn := function(r.Location)
	switch {
	case r.Reason == "QUEUE_PURGE" || r.Reason == "SOCKET_CLOSE" || (r.Reason == "" && purgeFuncs[fn]):
		return c.purged(ev, r, fn)
	case r.Proto == "icmp" && r.ICMPType == 0, r.Proto == "icmp6" && r.ICMPType == 129:
		return c.echoReply(ev, r, fn)
	case r.Proto == "icmp6" && fn == "icmpv6_rcv" && r.Reason == "":
		return c.icmp6Handled(r)
	case r.Proto == "tcp":
		return c.tcp(ev, r, fn)
	case fn == "ip6_mc_input" && (r.Reason == "" || r.Reason == "NOT_SPECIFIED"):
		return c.notJoined(r)
	}
	return ""
}

// purgeFuncs free the queues of a socket being closed (kernels without
// drop reasons name no QUEUE_PURGE).
var purgeFuncs = map[string]bool{
	"skb_queue_purge": true, "__skb_queue_purge": true, "skb_queue_purge_reason": true,
	"unix_release_sock": true, "inet_sock_destruct": true, "sk_stream_kill_queues": true,
	"__sk_destruct": true, "sk_common_release": true, "udp_destruct_common": true, "udp_destruct_sock": true,
}

// purged: a packet on a socket's queue when the socket closed had reached
// that socket; only the application did not read it.
func (c *Classifier) purged(ev *event.Event, r *report.Report, fn string) string {
	if ev.Facts&(event.FactSkbSk|event.FactRxSk) == 0 {
		return "" // not owned by a socket: a device or qdisc queue, say
	}
	what := r.Reason
	if what == "" {
		what = "freed by " + fn
	}
	return fmt.Sprintf("queued on a socket that closed (%s): it had reached its socket, closed before the application read it", what)
}

// echoFuncs free an echo reply that no ping socket claimed: ping_rcv with
// NO_SOCKET, or icmp_rcv/icmpv6_rcv on kernels without reasons.
var echoFuncs = map[string]bool{"ping_rcv": true, "icmp_rcv": true, "icmpv6_rcv": true}

// echoReply: a raw socket (ping as root) gets a clone of each echo reply
// before ICMP looks for a ping (datagram) socket; when there is none the
// original is freed with NO_SOCKET although ping has its copy.
func (c *Classifier) echoReply(ev *event.Event, r *report.Report, fn string) string {
	if !echoFuncs[fn] || (r.Reason != "" && r.Reason != "NO_SOCKET") {
		return ""
	}
	if ev.Facts&event.FactCloned == 0 {
		return "" // no copy was made: nobody received it
	}
	v6 := r.Proto == "icmp6"
	if !c.rawOpen(r.Netns, v6) {
		if ev.Facts&event.FactShared != 0 {
			// ping -c 1 exits before anyone can look; but at the free
			// its copy was still queued (raw delivery comes first).
			return fmt.Sprintf("echo reply delivered: a socket still held its copy when %s freed the original that no ping socket wanted (raw %s sockets, such as ping's, get theirs first; none is open now)",
				fn, strings.ToUpper(r.Proto))
		}
		return ""
	}
	return fmt.Sprintf("echo reply delivered to a raw %s socket in netns %s (ping); %s freed the original that no ping socket wanted",
		strings.ToUpper(r.Proto), r.NetnsName, fn)
}

func (c *Classifier) rawOpen(netns uint32, v6 bool) bool {
	k := rawKey{netns, v6}
	now := c.now()
	c.mu.Lock()
	seen, ok := c.rawSeen[k]
	c.mu.Unlock()
	if ok && now.Sub(seen) < rawMemory/10 {
		return true // seen just now: spare the look
	}
	open, err := c.socks.RawICMP(netns, v6)
	if err == nil && open {
		c.mu.Lock()
		c.rawSeen[k] = now
		c.mu.Unlock()
		return true
	}
	return ok && now.Sub(seen) < rawMemory
}

// icmp6Handled: before drop reasons (5.17), icmpv6_rcv ends the messages
// it handled in full with kfree_skb, not consume_skb ("preserve the status
// quo", says the kernel): echo requests it answered, neighbour discovery
// and MLD. Echo requests count only when this netns answers them.
func (c *Classifier) icmp6Handled(r *report.Report) string {
	what, ok := icmp6Handled[r.ICMPType]
	if !ok {
		return ""
	}
	if r.ICMPType == 128 {
		v, err := c.socks.Sysctl(r.Netns, "net.ipv6.icmp.echo_ignore_all")
		if err != nil || strings.TrimSpace(v) != "0" {
			return ""
		}
		what += " (answered: net.ipv6.icmp.echo_ignore_all=0)"
	}
	return fmt.Sprintf("%s handled by icmpv6_rcv, which before drop reasons (5.17) frees every message it handled with kfree_skb", what)
}

// icmp6Handled are the ICMPv6 types icmpv6_rcv handles in full.
var icmp6Handled = map[uint8]string{128: "echo request", 130: "MLD query", 131: "MLD report", 132: "MLD done",
	143: "MLDv2 report", 133: "router solicitation", 134: "router advertisement", 135: "neighbour solicitation",
	136: "neighbour advertisement", 137: "redirect"}

// notJoined: ip6_mc_input frees a multicast packet that no group of the
// receiving device wants (MLD reports to ff02::16 reach every host on the
// link, only routers listen): it was never meant for this host.
func (c *Classifier) notJoined(r *report.Report) string {
	dst, err := netip.ParseAddr(r.Dst)
	if err != nil || !dst.Is6() || !dst.IsMulticast() || r.Iface == "" {
		return ""
	}
	joined, err := c.socks.Joined6(r.Netns, r.Iface, dst)
	if err != nil || joined {
		return ""
	}
	return fmt.Sprintf("multicast to %s, a group %s has not joined in netns %s: not meant for this host", dst, r.Iface, r.NetnsName)
}

// tcpFuncs free segments of an existing connection once TCP has taken
// what it needed from them (an ACK, a FIN answered from TIME_WAIT).
var tcpFuncs = map[string]bool{"tcp_rcv_state_process": true, "tcp_v4_rcv": true, "tcp_v6_rcv": true}

// tcp: a segment TCP processed and freed without a reason (the ACK of a
// peer in CLOSE_WAIT, a FIN to a connection in TIME_WAIT) reached its
// connection. A SYN or a segment without a socket (NO_SOCKET) stays a
// drop.
func (c *Classifier) tcp(ev *event.Event, r *report.Report, fn string) string {
	if !tcpFuncs[fn] || (r.Reason != "" && r.Reason != "NOT_SPECIFIED") {
		return ""
	}
	// A SYN wants a new connection, a RST ends one; data (PSH, URG) for a
	// socket that was closed is lost to the application (TCP resets the
	// sender). Only an ACK or FIN carries nothing left to deliver.
	for _, f := range []string{"SYN", "RST", "PSH", "URG"} {
		if hasFlag(r.TCPFlags, f) {
			return ""
		}
	}
	if ev.Facts&event.FactRxSk != 0 && ev.SkState != 0 {
		st := c.state(ev.SkState - 1)
		if !connected[st] {
			return "" // a listener, say: the ACK matched no connection
		}
		return fmt.Sprintf("segment of a connection whose socket is in %s: %s took its ACK/FIN and freed it (the kernel passed that socket)",
			st, fn)
	}
	st, err := c.socks.TCPState(r.Netns, r.Dst, r.Src, r.Dport, r.Sport)
	if err == nil && connected[st] {
		return fmt.Sprintf("segment of a connection whose socket is in %s in netns %s: %s took its ACK/FIN and freed it",
			st, r.NetnsName, fn)
	}
	if fn == "tcp_rcv_state_process" {
		// Kernels before 6.11 do not pass the socket, which may be gone
		// (LAST_ACK to closed) before anyone can look; but this function
		// runs only for a segment matched to a socket of its connection.
		return "segment of an existing connection: tcp_rcv_state_process, which runs only for a segment matched to its socket, took its ACK/FIN and freed it"
	}
	return ""
}

// connected are the states of a socket that has a connection to take an
// ACK or FIN (not LISTEN, SYN-SENT, NEW-SYN-RECV or CLOSE: an ACK there
// matched no connection and the sender gets a reset).
var connected = map[string]bool{"ESTABLISHED": true, "SYN-RECV": true, "FIN-WAIT1": true, "FIN-WAIT2": true,
	"CLOSE-WAIT": true, "CLOSING": true, "LAST-ACK": true, "TIME-WAIT": true}

func (c *Classifier) state(v uint8) string {
	if c.states != nil {
		if m := c.states(); m != nil && m[v] != "" {
			return m[v]
		}
	}
	return fmt.Sprintf("state %d", v)
}

func hasFlag(flags, f string) bool {
	for _, x := range strings.Split(flags, ",") {
		if x == f {
			return true
		}
	}
	return false
}

// function is the function part of a location ("ping_rcv+0xab [mod]"),
// without compiler suffixes (".constprop.0").
func function(loc string) string {
	fn, _, _ := strings.Cut(loc, "+")
	fn, _, _ = strings.Cut(fn, ".")
	return strings.TrimSpace(fn)
}
