package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestLateNetns: a namespace created a second after pktdrop is ready gets
// its netfilter coverage (the hook on the path; on kernels without
// nf_hook_slow probes that takes links attached in it) and its --rules
// trace table (the nft table and chain that dropped), and the delay from
// its creation to the first fully covered drop is measured. Not parallel:
// it watches every namespace.
func TestLateNetns(t *testing.T) {
	requireRoot(t)
	// An address no other test uses: the filter must not catch others' drops.
	addr := fmt.Sprintf("10.77.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	args := []string{"--proto", "icmp", "--dst", addr}
	if nftRulesUnavailable(t, append([]string{"watch"}, args...)...) {
		return
	}
	p := start(t, append([]string{"watch", "-o", "json", "--rules"}, args...)...)
	time.Sleep(time.Second)

	n := testnet.New(t)
	created := time.Now()
	ns := n.NS("late")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	ns.MustRun("nft", "add table ip pdlate; add chain ip pdlate in { type filter hook input priority 0; policy accept; }; "+
		"add rule ip pdlate in ip daddr "+addr+" counter drop")
	ping, err := ns.Start("ping", "-q", "-i", "0.01", "-c", "1000", "-W", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill() }()

	covered := func(r report.Report) bool {
		return r.Netns == ns.Inode() && r.Table == "pdlate" && r.Chain == "in" &&
			slices.ContainsFunc(r.Path, func(s report.Step) bool { return s.Where == "INPUT" })
	}
	var first *report.Report
	deadline := time.Now().Add(reportTimeout)
	for first == nil && time.Now().Before(deadline) {
		for _, r := range p.reports() {
			if covered(r) {
				first = &r
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := p.stop(syscall.SIGINT)
	if first == nil {
		t.Fatalf("no drop in the late namespace %s with hook INPUT and table pdlate/in; reports:\n%s\nstderr:\n%s",
			ns.Name(), brief(res.Reports), res.Stderr)
	}
	uncovered := 0
	for _, r := range res.Reports {
		if r.Netns == ns.Inode() && r.Time.Before(first.Time) {
			uncovered++
		}
	}
	if first.NetnsName != ns.Name() {
		t.Errorf("late namespace named %q, want %q", first.NetnsName, ns.Name())
	}
	t.Logf("coverage delay: %v from `ip netns add` to the first drop with hook and table (%d drops before it lacked them)",
		first.Time.Sub(created).Round(time.Millisecond), uncovered)
	if d := first.Time.Sub(created); d > time.Second {
		t.Errorf("coverage took %v, want under 1s", d)
	}
}
