package testnet

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pktdrop/pktdrop/internal/ksym"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/reasons"
)

// TestDropScenarios proves each drop reproduction on the running kernel,
// independently of pktdrop. The kernel's own counter for that drop must
// move and the trigger's packets must arrive on the expected device;
// where perf can record, they must also be freed there with the expected
// reason and location (kernels with drop reasons) or at all (older ones).
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
			dropNS := dropNetns(s)
			before, rxBefore := dropCounter(t, s), rxPackets(t, dropNS, s.Expect.Iface)
			drops, traced := recordDrops(t, s.Trigger)
			after, rxAfter := dropCounter(t, s), rxPackets(t, dropNS, s.Expect.Iface)
			if after <= before {
				t.Errorf("drop counter did not move: %d -> %d", before, after)
			}
			if rxAfter <= rxBefore {
				t.Errorf("no packet arrived on %s in %s: rx_packets %d -> %d", s.Expect.Iface, dropNS.Name(), rxBefore, rxAfter)
			}
			if traced {
				checkDrops(t, s, drops)
			}
		})
	}
}

func ok(f func(testing.TB) *Scenario) func(testing.TB) (*Scenario, error) {
	return func(tb testing.TB) (*Scenario, error) { return f(tb), nil }
}

// dropNetns is the namespace the scenario's drop happens in.
func dropNetns(s *Scenario) *NS {
	if s.Router != nil && s.Expect.Netns == s.Router.Name() {
		return s.Router
	}
	return s.Server
}

// dropCounter reads the kernel counter the scenario's drop increments in
// the dropping namespace: the chain policy counter for netfilter, an SNMP
// counter (nstat, the namespace's /proc/net/snmp) otherwise.
func dropCounter(t *testing.T, s *Scenario) int {
	t.Helper()
	ns := dropNetns(s)
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
// Expect.Iface; on kernels with drop reasons (the running kernel's BTF has
// enum skb_drop_reason, 5.17+) one of them must carry the expected reason
// and location. Without drop reasons only the device is checked and the
// location logged, since it differs by version.
func checkDrops(t *testing.T, s *Scenario, drops []drop) {
	t.Helper()
	rt, err := kernelReasons()
	if err != nil {
		t.Fatalf("drop reasons of the running kernel: %v", err)
	}
	proto := "protocol=2048"
	if strings.Contains(s.Expect.Dst, ":") {
		proto = "protocol=34525"
	}
	var onDev []drop
	for _, d := range drops {
		if d.Dev == s.Expect.Iface && strings.Contains(d.Line, proto) {
			d.Location = funcName(t, d.Location)
			onDev = append(onDev, d)
		}
	}
	if !rt.Available() {
		if len(onDev) == 0 {
			t.Errorf("kernel has no drop reasons, and no kfree_skb of the trigger's packets on %s (of %d drops)", s.Expect.Iface, len(drops))
			return
		}
		t.Logf("kernel has no drop reasons; drop on %s at %s: %s", onDev[0].Dev, onDev[0].Location, onDev[0].Line)
		return
	}
	for _, d := range onDev {
		if d.Reason == s.Expect.Reason && locationOK(s, d.Location) {
			t.Logf("measured %s at %s: %s", s.Name, d.Location, d.Line)
			return
		}
	}
	t.Errorf("no kfree_skb on %s with reason %s at %s; drops on that device: %v (of %d drops)",
		s.Expect.Iface, s.Expect.Reason, s.Expect.Location, onDev, len(drops))
}

// locationOK accepts Expect.Location (as measured on 6.18) and, for
// netfilter drops, nf_hook_slow: before nf_tables freed dropped skbs in
// nft_do_chain itself, the verdict was carried out there. The compiler's
// clone suffixes (ip_rcv_finish_core.constprop.0 on Debian's 6.12, .isra.N,
// .part.N, .cold) name the same source function, so they are dropped.
func locationOK(s *Scenario, loc string) bool {
	loc, _, _ = strings.Cut(loc, ".")
	return loc == s.Expect.Location || (s.Expect.Cause == CauseNetfilter && loc == "nf_hook_slow")
}

// kernelReasons is the running kernel's drop reason table, read once.
var kernelReasons = sync.OnceValues(reasons.Load)

// kallsyms is the running kernel's symbol table, read once.
var kallsyms = sync.OnceValues(func() (*ksym.Table, error) { return ksym.Load(ksym.DefaultPath) })

// funcName reduces a kfree_skb location to its function. Newer kernels
// print it as symbol+offset (%pS), which parseDrops already cut; older ones
// (Debian's 6.1 and 5.10) print the bare address (%p), resolved here.
func funcName(t *testing.T, loc string) string {
	t.Helper()
	hex, found := strings.CutPrefix(loc, "0x")
	if !found {
		return loc
	}
	addr, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return loc
	}
	tab, err := kallsyms()
	if err != nil {
		t.Fatalf("resolve kfree_skb location %s: %v", loc, err)
	}
	if sym, ok := tab.Lookup(addr); ok {
		return sym.Name
	}
	return loc
}

// rxPackets is the receive packet count of dev in ns. ip netns exec mounts
// the namespace's own /sys, so the path names ns's device.
func rxPackets(t *testing.T, ns *NS, dev string) int {
	t.Helper()
	out := strings.TrimSpace(ns.MustRun("cat", "/sys/class/net/"+dev+"/statistics/rx_packets"))
	v, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("rx_packets of %s in %s: %q", dev, ns.Name(), out)
	}
	return v
}

func TestLocationOK(t *testing.T) {
	nf := &Scenario{Expect: Expect{Cause: CauseNetfilter, Location: "nft_do_chain"}}
	rp := &Scenario{Expect: Expect{Cause: CauseRPFilter, Location: "ip_rcv_finish_core"}}
	for _, c := range []struct {
		s    *Scenario
		loc  string
		want bool
	}{
		{nf, "nft_do_chain", true},
		{nf, "nf_hook_slow", true},
		{nf, "ipt_do_table", false},
		{rp, "ip_rcv_finish_core", true},
		{rp, "ip_rcv_finish_core.constprop.0", true},
		{rp, "ip_rcv_finish_core.isra.0", true},
		{rp, "nf_hook_slow", false},
		{rp, "ip_rcv_finish", false},
		{rp, "0xffffffffb686ccfb", false},
	} {
		if got := locationOK(c.s, c.loc); got != c.want {
			t.Errorf("locationOK(%s, %q) = %v, want %v", c.s.Expect.Location, c.loc, got, c.want)
		}
	}
}
