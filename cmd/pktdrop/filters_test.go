package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestFilters runs the FORWARD policy drop (or the UDP one, for ports)
// with filters that must, or must not, select it. Each subtest builds its
// own scenario, so the drop happens while pktdrop watches with exactly
// the filter under test.
func TestFilters(t *testing.T) {
	type tc struct {
		name  string
		build func(testing.TB) *testnet.Scenario
		args  func(s *testnet.Scenario) []string
		want  bool // a report of the scenario's drop, or none at all
	}
	fpd, udp := testnet.ForwardPolicyDrop, testnet.UDPNoListener
	cases := []tc{
		{"host_other_address", fpd, func(s *testnet.Scenario) []string {
			// In the test subnet, but no scenario uses it.
			return []string{"--netns", s.Expect.Netns, "--proto", "icmp", "--host", "10.231.1.99"}
		}, false},
		{"host_match", fpd, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Expect.Netns, "--proto", "icmp", "--host", s.Expect.Dst}
		}, true},
		{"dst_subnet_other", fpd, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Expect.Netns, "--dst", "10.231.3.0/24"}
		}, false},
		{"dport_other", udp, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Expect.Netns, "--proto", "udp", "--dport", fmt.Sprint(s.Expect.DstPort + 1)}
		}, false},
		{"port_match", udp, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Expect.Netns, "--proto", "udp", "--port", fmt.Sprint(s.Expect.DstPort)}
		}, true},
		{"netns_other", fpd, func(s *testnet.Scenario) []string {
			// The client sends the packet; the router drops it.
			return []string{"--netns", s.Client.Name(), "--proto", "icmp", "--src", s.Expect.Src}
		}, false},
		{"netns_by_inode", fpd, func(s *testnet.Scenario) []string {
			return []string{"--netns", fmt.Sprint(s.Router.Inode()), "--proto", "icmp", "--src", s.Expect.Src}
		}, true},
		{"netns_by_path", fpd, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Router.Path(), "--proto", "icmp", "--src", s.Expect.Src}
		}, true},
		{"iface_match", fpd, func(s *testnet.Scenario) []string {
			return []string{"--netns", s.Expect.Netns, "--proto", "icmp", "--iface", s.Expect.Iface}
		}, true},
		{"iface_other", fpd, func(s *testnet.Scenario) []string {
			// The router's other device: the packet never dies there.
			return []string{"--netns", s.Expect.Netns, "--proto", "icmp", "--iface", "rt-out"}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, ok(c.build))
			args := c.args(s)
			want := 0
			if c.want {
				want = 1
			}
			res := watch(t, s.Trigger, want, args...)
			checkSelected(t, s, res, c.want)
		})
	}
}

// checkSelected wants only reports of the scenario's drop, and at least
// one if want, none otherwise.
func checkSelected(t *testing.T, s *testnet.Scenario, res result, want bool) {
	t.Helper()
	if !want {
		if len(res.Reports) != 0 {
			t.Errorf("filter should select nothing, got:\n%s", brief(res.Reports))
		}
		return
	}
	for _, r := range res.Reports {
		if r.NetnsName != s.Expect.Netns || r.Src != s.Expect.Src || r.Dst != s.Expect.Dst || r.Iface != s.Expect.Iface {
			t.Errorf("report is not the scenario's drop (%s %s > %s on %s):\n%s",
				s.Expect.Netns, s.Expect.Src, s.Expect.Dst, s.Expect.Iface, brief(res.Reports))
			return
		}
	}
}

// TestReasonFilter: --reason selects by the kernel's drop reason and
// --exclude-reason removes it; on kernels without reasons both are
// refused as bad input, since they could never match.
func TestReasonFilter(t *testing.T) {
	for _, c := range []struct {
		flag string
		want bool
	}{{"--reason", true}, {"--exclude-reason", false}} {
		t.Run(strings.TrimPrefix(c.flag, "--"), func(t *testing.T) {
			t.Parallel()
			requireRoot(t)
			if !kernelHasReasons(t) {
				res := run(t, "watch", c.flag, "NETFILTER_DROP")
				checkUsageError(t, res, strings.TrimPrefix(c.flag, "--"))
				return
			}
			s := buildScenario(t, ok(testnet.ForwardPolicyDrop))
			want := 0
			if c.want {
				want = 1
			}
			res := watch(t, s.Trigger, want, "--netns", s.Expect.Netns, "--proto", "icmp", c.flag, "NETFILTER_DROP")
			checkSelected(t, s, res, c.want)
			for _, r := range res.Reports {
				if r.Reason != "NETFILTER_DROP" {
					t.Errorf("--reason NETFILTER_DROP reported reason %q", r.Reason)
				}
			}
		})
	}
}
