package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/reasons"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestDecidingFacts: for each cause beyond the field cases pktdrop names
// the one fact that makes it actionable (the route's type, prefix and
// table, the rule that chose the table, the MTU, the next hop ...), as
// the scenario built it.
func TestDecidingFacts(t *testing.T) {
	route := func(typ string) func(testing.TB) (*testnet.Scenario, error) {
		return func(tb testing.TB) (*testnet.Scenario, error) { return testnet.RouteType(tb, typ), nil }
	}
	v6 := func(typ string) func(testing.TB) (*testnet.Scenario, error) {
		return func(tb testing.TB) (*testnet.Scenario, error) { return testnet.NoRoute6(tb, typ), nil }
	}
	cases := []struct {
		name  string
		build func(testing.TB) (*testnet.Scenario, error)
		// icmpBack: the path shows the ICMP error routed back to the
		// sender as such, not as a step of the dropped packet.
		icmpBack bool
	}{
		{"Blackhole", route("blackhole"), false},
		{"Unreachable", route("unreachable"), true},
		{"Prohibit", route("prohibit"), true},
		{"Throw", route("throw"), true},
		{"PolicyRoute", ok(testnet.PolicyRoute), true},
		{"PolicyRuleAction", ok(testnet.PolicyRuleAction), true},
		{"NoRoute6", v6(""), false},
		{"Blackhole6", v6("blackhole"), false},
		{"Unreachable6", v6("unreachable"), true},
		{"TTLExpired", ok(testnet.TTLExpired), true},
		{"FragNeeded", ok(testnet.FragNeeded), true},
		{"NeighbourFailed", ok(testnet.NeighbourFailed), false},
		{"TCDrop", ok(testnet.TCDrop), false},
		{"SocketBufferFull", ok(testnet.SocketBufferFull), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, c.build)
			res := watch(t, s.Trigger, 1, scenarioFilter(s)...)
			// A reason this kernel does not define yet cannot be given:
			// the site then says NOT_SPECIFIED.
			if s.Expect.Reason != "" && kernelHasReasons(t) && !kernelKnowsReason(t, s.Expect.Reason) {
				s.Expect.Reason = "NOT_SPECIFIED"
			}
			checkDrop(t, s, dropCase{name: c.name}, res)
			if len(res.Reports) == 0 {
				return
			}
			r := res.Reports[0]
			t.Logf("pktdrop's text:\n%s", output.Text(&r))
			checkFacts(t, r, s.Expect.Facts)
			if r.Family == "ipv6" && strings.Contains(r.Hint, "ip route") {
				t.Errorf("hint for an IPv6 drop uses `ip route`, not `ip -6 route`: %s", r.Hint)
			}
			if c.icmpBack {
				checkICMPBack(t, r)
			}
		})
	}
}

// checkFacts wants each fact in the report's evidence, exactly.
func checkFacts(t *testing.T, r report.Report, facts map[string]string) {
	t.Helper()
	for k, want := range facts {
		if got, ok := r.Evidence[k]; !ok || got != want {
			t.Errorf("evidence %s = %q, want %q (evidence %v)", k, got, want, r.Evidence)
		}
	}
}

// checkICMPBack wants the route lookup for the ICMP error shown as the
// error sent back to the sender, and no route step of the packet's path
// towards the sender after its failed lookup.
func checkICMPBack(t *testing.T, r report.Report) {
	t.Helper()
	found := false
	for _, s := range r.Path {
		if s.Where == "icmp_error" {
			found = true
			if s.Dst != r.Src || !strings.Contains(s.Detail, r.Src) {
				t.Errorf("icmp_error step %+v is not towards the sender %s", s, r.Src)
			}
		}
		if s.Where == "route" && s.Dst == r.Src && s.NetnsName == r.NetnsName {
			t.Errorf("path step %+v routes towards the sender as if it were the dropped packet", s)
		}
	}
	if !found {
		t.Errorf("no icmp_error step in the path %+v", r.Path)
	}
}

// TestTraceFragNeededMTU: in trace, the ICMP "fragmentation needed" the
// router sends back shows the MTU it carries, not an echo sequence.
func TestTraceFragNeededMTU(t *testing.T) {
	t.Parallel()
	s := buildScenario(t, ok(testnet.FragNeeded))
	p := start(t, "trace", "--netns", s.Client.Name(), "--proto", "icmp", "--dst", s.Expect.Src)
	if err := s.Trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	want := "dest-unreachable frag-needed mtu " + s.Expect.Facts["mtu"]
	deadline := time.Now().Add(reportTimeout)
	for !strings.Contains(p.stdout.String(), want) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	res := p.stop(syscall.SIGINT)
	t.Logf("pktdrop trace:\n%s", res.Stdout)
	if !strings.Contains(res.Stdout, want) {
		t.Errorf("trace output lacks %q", want)
	}
	if strings.Contains(res.Stdout, "frag-needed id") || strings.Contains(res.Stdout, "frag-needed mtu "+s.Expect.Facts["mtu"]+" seq") {
		t.Error("the MTU of a frag-needed is shown as an echo id/seq")
	}
}

// kernelKnowsReason: the running kernel's enum skb_drop_reason has name.
func kernelKnowsReason(t *testing.T, name string) bool {
	t.Helper()
	rt, err := reasons.Load()
	if err != nil {
		t.Fatalf("read drop reasons from kernel BTF: %v", err)
	}
	_, ok := rt.Value(name)
	return ok
}
