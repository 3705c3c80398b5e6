// Package report holds what pktdrop tells about one packet: the model
// that text and JSON output are written from. Its JSON form is the
// documented schema (README, "JSON output").
package report

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Report is one dropped packet (kind "drop") or one followed packet that
// reached its normal end (kind "trace").
type Report struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason"`
	Location  string    `json:"location"`
	Netns     uint32    `json:"netns"`
	NetnsName string    `json:"netns_name"`
	Pod       string    `json:"pod,omitempty"` // the pod (or container) living in the netns
	PodNS     string    `json:"pod_namespace,omitempty"`
	PodUID    string    `json:"pod_uid,omitempty"`
	Iface     string    `json:"iface"`
	Ifindex   uint32    `json:"ifindex"`
	Family    string    `json:"family"`
	Proto     string    `json:"proto"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Sport     uint16    `json:"sport"`
	Dport     uint16    `json:"dport"`
	ICMPType  uint8     `json:"icmp_type"`
	ICMPCode  uint8     `json:"icmp_code"`
	ICMPID    uint16    `json:"icmp_id"`
	ICMPSeq   uint16    `json:"icmp_seq"`
	TCPFlags  string    `json:"tcp_flags,omitempty"`
	Len       uint32    `json:"len"`
	Mark      uint32    `json:"mark"`
	// TTL is the IPv4 TTL or IPv6 hop limit as the packet was seen; a
	// cause that rests on it puts it in Evidence.
	TTL uint8 `json:"-"`

	Cause       string            `json:"cause"`
	Explanation string            `json:"explanation"`
	Hint        string            `json:"hint"`
	Evidence    map[string]string `json:"evidence,omitempty"`

	Hook       string `json:"hook"`
	Table      string `json:"table"`
	Chain      string `json:"chain,omitempty"`
	Rule       string `json:"rule,omitempty"`
	RuleHandle uint64 `json:"rule_handle,omitempty"`
	RuleIndex  int    `json:"rule_index,omitempty"` // iptables-legacy: position in the chain
	Verdict    string `json:"verdict,omitempty"`

	Path      []Step `json:"path"`
	StepsLost int    `json:"steps_lost,omitempty"`
	NAT       []NAT  `json:"nat"`
}

// Owned tells whether NetnsName names who lives there ("pod shop/web",
// "container web") rather than the namespace itself.
func (r *Report) Owned() bool {
	return r.Pod != "" || strings.HasPrefix(r.NetnsName, "container ")
}

// Step is one place the packet was seen, oldest first.
type Step struct {
	Where     string `json:"where"`
	Netns     uint32 `json:"netns"`
	NetnsName string `json:"netns_name"`
	Pod       string `json:"pod,omitempty"`
	PodNS     string `json:"pod_namespace,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	Iface     string `json:"iface"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Sport     uint16 `json:"sport"`
	Dport     uint16 `json:"dport"`
	Detail    string `json:"detail"`
}

// NAT is one address or port translation seen on the path.
type NAT struct {
	Hook      string `json:"hook"`
	NetnsName string `json:"netns_name"`
	Before    string `json:"before"`
	After     string `json:"after"`
	By        string `json:"by"` // "rule" (first packet of a flow) or "conntrack"
	Rule      string `json:"rule,omitempty"`
}

// Tuple renders addresses and ports as "10.0.0.1:80" or "[fd00::1]:80".
func Tuple(addr string, port uint16) string {
	if port == 0 {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}
