// Package kenum names small kernel enums (netfilter hooks and families,
// conntrack states) from the running kernel's BTF, so no enum value is
// compiled into pktdrop.
package kenum

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Names maps values of the enums pktdrop shows to readable names.
type Names struct {
	Hook   map[uint8]string // NF_INET_* → "PREROUTING", ...
	Family map[uint8]string // NFPROTO_* → "ipv4", ...
	// CtInfo maps ip_conntrack_info values; Reply holds values of the
	// reply direction.
	CtInfo map[uint8]string
	Reply  map[uint8]bool
	// TCPState maps socket states (TCP_ESTABLISHED ...) to ss(8)'s names.
	TCPState map[uint8]string
}

var hookNames = map[string]string{
	"NF_INET_PRE_ROUTING": "PREROUTING", "NF_INET_LOCAL_IN": "INPUT", "NF_INET_FORWARD": "FORWARD",
	"NF_INET_LOCAL_OUT": "OUTPUT", "NF_INET_POST_ROUTING": "POSTROUTING",
}

var familyNames = map[string]string{
	"NFPROTO_IPV4": "ipv4", "NFPROTO_IPV6": "ipv6", "NFPROTO_BRIDGE": "bridge", "NFPROTO_ARP": "arp",
	"NFPROTO_INET": "inet", "NFPROTO_NETDEV": "netdev",
}

var ctNames = map[string]string{
	"IP_CT_ESTABLISHED": "established", "IP_CT_RELATED": "related", "IP_CT_NEW": "new",
	"IP_CT_ESTABLISHED_REPLY": "established reply", "IP_CT_RELATED_REPLY": "related reply",
	"IP_CT_UNTRACKED": "untracked",
}

// FromSpec reads the enums from spec.
func FromSpec(spec *btf.Spec) (*Names, error) {
	return fromEnums(func(member string, fn func(string, uint64)) error { return eachValue(spec, member, fn) })
}

// fromEnums builds Names with each, which calls fn for every value of
// the enum that has a value named member.
func fromEnums(each func(member string, fn func(string, uint64)) error) (*Names, error) {
	n := &Names{Hook: map[uint8]string{}, Family: map[uint8]string{}, CtInfo: map[uint8]string{}, Reply: map[uint8]bool{},
		TCPState: map[uint8]string{}}
	err := each("NF_INET_PRE_ROUTING", func(name string, v uint64) {
		if h, ok := hookNames[name]; ok {
			n.Hook[uint8(v)] = h
		}
	})
	if err != nil {
		return nil, err
	}
	if err := each("NFPROTO_IPV4", func(name string, v uint64) {
		if f, ok := familyNames[name]; ok {
			n.Family[uint8(v)] = f
		}
	}); err != nil {
		return nil, err
	}
	// Conntrack may be absent from BTF on minimal kernels: not fatal.
	_ = each("IP_CT_ESTABLISHED", func(name string, v uint64) {
		if c, ok := ctNames[name]; ok {
			n.CtInfo[uint8(v)] = c
			n.Reply[uint8(v)] = strings.HasSuffix(name, "_REPLY")
		}
	})
	_ = each("TCP_ESTABLISHED", func(name string, v uint64) {
		if st, ok := strings.CutPrefix(name, "TCP_"); ok && v < 256 {
			n.TCPState[uint8(v)] = strings.ReplaceAll(st, "_", "-")
		}
	})
	return n, nil
}

// eachValue finds the enum that has a value named member (these enums are
// anonymous in some kernels, so they are found by a member, not a name).
func eachValue(spec *btf.Spec, member string, fn func(string, uint64)) error {
	for typ, err := range spec.All() {
		if err != nil {
			return fmt.Errorf("read kernel BTF: %w", err)
		}
		e, ok := typ.(*btf.Enum)
		if !ok {
			continue
		}
		found := false
		for _, v := range e.Values {
			if v.Name == member {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		for _, v := range e.Values {
			fn(v.Name, v.Value)
		}
		return nil
	}
	return fmt.Errorf("kernel BTF has no enum with %s", member)
}
