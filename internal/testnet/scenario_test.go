package testnet

import (
	"errors"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// TestDropScenarios proves each drop reproduction on the running kernel,
// independently of pktdrop: the trigger's packets must be freed with the
// expected reason and location on the expected device (perf), and the
// kernel's own counter for that drop must move.
func TestDropScenarios(t *testing.T) {
	builders := []struct {
		name  string
		build func(testing.TB) (*Scenario, error)
	}{
		{"ForwardPolicyDrop", ok(ForwardPolicyDrop)},
		{"ForwardPolicyDrop6", ok(ForwardPolicyDrop6)},
		{"ForwardPolicyDropLegacy", ForwardPolicyDropLegacy},
		{"ForwardingDisabled", ok(ForwardingDisabled)},
		{"NoRoute", ok(NoRoute)},
		{"RPFilterStrict", ok(RPFilterStrict)},
		{"UDPNoListener", ok(UDPNoListener)},
		{"UDPNoListener6", ok(UDPNoListener6)},
		{"TCPNoListener", ok(TCPNoListener)},
	}
	for _, b := range builders {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			privtest.RequireCmd(t, "nstat")
			s, err := b.build(t)
			if errors.Is(err, ErrUnavailable) {
				privtest.Unavailable(t, err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range s.Notes {
				t.Log(n)
			}
			before := dropCounter(t, s)
			drops := recordDrops(t, s.Trigger)
			after := dropCounter(t, s)
			if after <= before {
				t.Errorf("drop counter did not move: %d -> %d", before, after)
			}
			checkDrops(t, s, drops)
		})
	}
}

func ok(f func(testing.TB) *Scenario) func(testing.TB) (*Scenario, error) {
	return func(tb testing.TB) (*Scenario, error) { return f(tb), nil }
}

// dropCounter reads the kernel counter the scenario's drop increments in
// the dropping namespace: the chain policy counter for netfilter, an SNMP
// counter otherwise.
func dropCounter(t *testing.T, s *Scenario) int {
	t.Helper()
	ns := s.Server
	if s.Router != nil && s.Expect.Netns == s.Router.Name() {
		ns = s.Router
	}
	if s.Expect.Cause == CauseNetfilter {
		return policyPackets(t, ns, iptablesTool(s), s.Expect.Table, s.Expect.Chain)
	}
	return nstat(t, ns, s.Expect.Counter)
}

func iptablesTool(s *Scenario) string {
	for _, n := range s.Notes {
		if tool, found := strings.CutPrefix(n, "iptables backend: "); found {
			return tool
		}
	}
	return "iptables-nft"
}

// checkDrops wants at least one drop of the trigger's packets on
// Expect.Iface with the expected reason and location. Kernels without
// drop reasons (before 5.17) are only checked for a drop on the device;
// their locations are logged, since they differ by version.
func checkDrops(t *testing.T, s *Scenario, drops []drop) {
	t.Helper()
	proto := "protocol=2048"
	if strings.Contains(s.Expect.Dst, ":") {
		proto = "protocol=34525"
	}
	reasons := false
	var onDev []drop
	for _, d := range drops {
		if d.Reason != "" {
			reasons = true
		}
		if d.Dev == s.Expect.Iface && strings.Contains(d.Line, proto) {
			onDev = append(onDev, d)
		}
	}
	for _, d := range onDev {
		if !reasons {
			t.Logf("kernel has no drop reasons; drop on %s at %s: %s", d.Dev, d.Location, d.Line)
			return
		}
		if d.Reason == s.Expect.Reason && locationOK(s, d.Location) {
			t.Logf("measured %s: %s", s.Name, d.Line)
			return
		}
	}
	t.Errorf("no kfree_skb on %s with reason %s at %s; drops on that device: %v (of %d drops)",
		s.Expect.Iface, s.Expect.Reason, s.Expect.Location, onDev, len(drops))
}

// locationOK accepts Expect.Location (as measured on 6.18) and, for
// netfilter drops, nf_hook_slow: before nf_tables freed dropped skbs in
// nft_do_chain itself, the verdict was carried out there.
func locationOK(s *Scenario, loc string) bool {
	return loc == s.Expect.Location || (s.Expect.Cause == CauseNetfilter && loc == "nf_hook_slow")
}
