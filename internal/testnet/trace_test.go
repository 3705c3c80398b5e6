package testnet

import (
	"slices"
	"testing"
)

// TestDNATShadowed proves field case 4: the connection lands on the
// Traefik pod, the KUBE-SEP rule counted it and the user's own DNAT rule
// to the VM never matched.
func TestDNATShadowed(t *testing.T) {
	t.Parallel()
	s := DNATShadowed(t)
	if err := s.Trigger(); err != nil {
		t.Fatal(err)
	}
	if got := rulePackets(t, s.Router, "iptables-nft", "nat", kubeSep); !slices.Equal(got, []int{1}) {
		t.Errorf("%s rule packets = %v, want [1]", kubeSep, got)
	}
	// PREROUTING: [jump KUBE-SERVICES, user's DNAT to the VM]. Only the
	// first packet of a connection traverses nat, so 1 and 0.
	if got := rulePackets(t, s.Router, "iptables-nft", "nat", "PREROUTING"); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("PREROUTING rule packets = %v, want [1 0] (user's DNAT shadowed)", got)
	}
}

// TestDNATBridge proves field case 5: the DNATed connection reaches ns1
// behind br0 and only the original direction hit the nat rule.
func TestDNATBridge(t *testing.T) {
	t.Parallel()
	s := DNATBridge(t)
	if err := s.Trigger(); err != nil {
		t.Fatal(err)
	}
	if got := rulePackets(t, s.Router, "iptables-nft", "nat", "PREROUTING"); !slices.Equal(got, []int{1}) {
		t.Errorf("PREROUTING rule packets = %v, want [1]", got)
	}
}
