package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestLateNetns: a namespace created a second after pktdrop is ready,
// whose firewall rule comes a second after that (a pod: CNI makes the
// namespace, the rule follows), gets its netfilter coverage (the hook on
// the path; on kernels without nf_hook_slow probes that takes links
// attached in it, replanned when the chain appears) and its --rules trace
// table, from its FIRST drop. Not parallel: it watches every namespace.
func TestLateNetns(t *testing.T) {
	requireRoot(t)
	// An address no other test uses: the filter must not catch others' drops.
	addr := fmt.Sprintf("10.77.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	args := []string{"--proto", "icmp", "--dst", addr}
	// Before 5.12 nf_tables rules cannot be named: the hook and table
	// from the probes are still checked.
	rules := !nftRulesUnavailable(t, append([]string{"watch", "--rules"}, args...)...)
	if rules {
		args = append(args, "--rules")
	}
	p := start(t, append([]string{"watch", "-o", "json"}, args...)...)
	time.Sleep(time.Second)

	n := testnet.New(t)
	links := nfLinks(t, p)
	created := time.Now()
	ns := n.NS("late")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	if at, ok := waitLinks(t, p, links, created.Add(2*time.Second)); ok {
		t.Logf("links attached in the new namespace %v after `ip netns add`", at.Sub(created).Round(time.Millisecond))
	}
	time.Sleep(time.Until(created.Add(time.Second)))
	links = nfLinks(t, p)
	ruled := time.Now()
	ns.MustRun("nft", "add table ip pdlate; add chain ip pdlate in { type filter hook input priority 0; policy accept; }; "+
		"add rule ip pdlate in ip daddr "+addr+" counter drop")
	replan(t, p, links, ruled)
	ino := ns.Inode()
	ping, err := ns.Start("ping", "-q", "-i", "0.01", "-c", "1000", "-W", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill() }()

	var first *report.Report
	for deadline := time.Now().Add(reportTimeout); first == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		for _, r := range rs {
			if r.Netns == ino {
				first = &r
				break
			}
		}
	}
	// The namespace goes: pktdrop lets go of it (its trace table's and
	// table watch's sockets would otherwise keep it alive).
	holds := func() bool { return slices.Contains(netnsFDs(t, p.cmd.Process.Pid), ino) }
	if first != nil && rules && !holds() {
		t.Errorf("pktdrop holds no handle on the late namespace while tracing its rules")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(3 * time.Second); holds() && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if holds() {
		t.Errorf("pktdrop still holds the deleted namespace %d 3s after `ip netns delete`", ino)
	}
	res := p.stop(syscall.SIGINT)
	if first == nil {
		t.Fatalf("no drop in the late namespace %s; reports:\n%s\nstderr:\n%s", ns.Name(), brief(res.Reports), res.Stderr)
	}
	table := tableNamed(*first, "pdlate", res.Stderr)
	if rules {
		table = first.Table == "pdlate" && first.Chain == "in"
	}
	if !table || !slices.ContainsFunc(first.Path, func(s report.Step) bool { return s.Where == "INPUT" }) {
		t.Errorf("the first drop in the late namespace, %v after its rule, lacks hook INPUT or table pdlate/in: hook %q table %q chain %q path %v\nstderr:\n%s",
			first.Time.Sub(ruled).Round(time.Millisecond), first.Hook, first.Table, first.Chain, first.Path, res.Stderr)
	}
	if first.NetnsName != ns.Name() {
		t.Errorf("late namespace named %q, want %q", first.NetnsName, ns.Name())
	}
}

// nfLinks counts the netfilter links pktdrop holds (none where
// nf_hook_slow is probed).
func nfLinks(t *testing.T, p *proc) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	n := 0
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if strings.Contains(string(b), "link_type:\tnetfilter") {
			n++
		}
	}
	return n
}

// waitLinks waits, until the deadline, for pktdrop to hold more netfilter
// links than before and tells when it saw them; false where it uses none.
func waitLinks(t *testing.T, p *proc, before int, deadline time.Time) (time.Time, bool) {
	t.Helper()
	if !strings.Contains(p.stderr.String(), "via netfilter links") {
		return time.Time{}, false
	}
	for time.Now().Before(deadline) {
		if nfLinks(t, p) > before {
			return time.Now(), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("pktdrop attached no netfilter link by %s (it holds %d); stderr:\n%s", deadline.Format("15:04:05.000"), before, p.stderr.String())
	return time.Time{}, false
}

// replan gives pktdrop a user's reaction time, 300 ms from the command
// that added a chain, to bracket it: it must have attached links for it
// by then (the replan is seen, and timed, in what pktdrop holds), and the
// packet is sent no sooner (other tests' namespaces may add links
// meanwhile, so the count alone cannot say the replan was ours: the first
// drop's hook does). Without the table watch only pktdrop's periodic
// rescan could come that soon. Where nf_hook_slow is probed there is
// nothing to replan.
func replan(t *testing.T, p *proc, links int, ruled time.Time) {
	t.Helper()
	if at, ok := waitLinks(t, p, links, ruled.Add(300*time.Millisecond)); ok {
		t.Logf("links replanned %v after the command adding the chain started", at.Sub(ruled).Round(time.Millisecond))
	}
	time.Sleep(time.Until(ruled.Add(300 * time.Millisecond)))
}

// netnsFDs lists the network namespaces process pid holds: nsfs handles,
// and the namespaces of its sockets (a netlink socket opened in a
// namespace keeps it alive), asked with SIOCGSKNS on a copy of each.
func netnsFDs(t *testing.T, pid int) []uint32 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(pidfd)
	var out []uint32
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(target, "net:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32); err == nil {
				out = append(out, uint32(n))
			}
			continue
		}
		if !strings.HasPrefix(target, "socket:") {
			continue
		}
		n, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			continue
		}
		nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
		unix.Close(fd)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(nsfd, &st) == nil {
			out = append(out, uint32(st.Ino))
		}
		unix.Close(nsfd)
	}
	return out
}

// TestUnnamedNetns: a namespace no directory shows (unshare, held by its
// process only) is found by the rescan its first drop triggers, and later
// drops in it carry hook and table.
func TestUnnamedNetns(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "unshare")
	addr := fmt.Sprintf("10.77.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	p := start(t, "watch", "-o", "json", "--proto", "icmp", "--dst", addr)
	script := "ip link set lo up && ip addr add " + addr + "/32 dev lo && " +
		"nft 'add table ip pdun; add chain ip pdun in { type filter hook input priority 0; policy accept; }; add rule ip pdun in ip daddr " + addr + " drop' && " +
		"ping -q -i 0.05 -c 100 -W 1 " + addr
	cmd := exec.Command("unshare", "--net", "sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var first, covered *report.Report
	for end := time.Now().Add(reportTimeout); covered == nil && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		for i := range rs {
			if first == nil {
				first = &rs[i]
			}
			if rs[i].Hook == "INPUT" && tableNamed(rs[i], "pdun", p.stderr.String()) {
				covered = &rs[i]
				break
			}
		}
	}
	res := p.stop(syscall.SIGINT)
	if covered == nil {
		t.Fatalf("no drop in the unshared namespace got hook INPUT and table filter; reports:\n%s\nstderr:\n%s", brief(res.Reports), res.Stderr)
	}
	if !strings.HasPrefix(covered.NetnsName, "pid ") {
		t.Errorf("unshared namespace named %q, want pid N (comm)", covered.NetnsName)
	}
	t.Logf("first drop %v, first covered drop %v later (%s)", first.Time.Format("15:04:05.000"), covered.Time.Sub(first.Time).Round(time.Millisecond), covered.NetnsName)
}

// TestLateChain: chains added to a namespace after its links were
// planned (links bracket only the chains a namespace has), a native nft
// chain and then an iptables-nft one at another hook, are bracketed before
// their first drop: each first drop carries its hook and table.
func TestLateChain(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "iptables-nft")
	addr := fmt.Sprintf("10.77.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	n := testnet.New(t)
	ns := n.NS("chain")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	p := start(t, "watch", "-o", "json", "--proto", "icmp", "--dst", addr, "--netns", ns.Name())
	time.Sleep(1500 * time.Millisecond)

	// firstDrop pings addr a few times and returns pktdrop's first report
	// after the reports it had already printed.
	seen := 0
	firstDrop := func(what string) report.Report {
		t.Helper()
		if _, err := ns.Run("ping", "-q", "-i", "0.05", "-c", "10", "-W", "1", addr); err == nil {
			t.Fatalf("%s: ping got answers through the drop rule", what)
		}
		p.waitReports(seen+1, reportTimeout)
		time.Sleep(200 * time.Millisecond) // the rest of this ping's drops
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		if len(rs) <= seen {
			t.Fatalf("%s: no drop reported; stderr:\n%s", what, p.stderr.String())
		}
		r := rs[seen]
		seen = len(rs)
		return r
	}

	links := nfLinks(t, p)
	ruled := time.Now()
	ns.MustRun("nft", "add table ip pdchain; add chain ip pdchain in { type filter hook input priority 0; policy accept; }; "+
		"add rule ip pdchain in ip daddr "+addr+" drop")
	replan(t, p, links, ruled)
	r := firstDrop("nft chain")
	if r.Hook != "INPUT" || !tableNamed(r, "pdchain", p.stderr.String()) {
		t.Errorf("first drop in the nft chain added later: hook %q table %q, want INPUT and pdchain (or filter)\nstderr:\n%s", r.Hook, r.Table, p.stderr.String())
	}

	ns.MustRun("nft", "delete table ip pdchain")
	links = nfLinks(t, p)
	ruled = time.Now()
	ns.MustRun("iptables-nft", "-A", "OUTPUT", "-d", addr, "-j", "DROP")
	replan(t, p, links, ruled)
	r = firstDrop("iptables-nft chain")
	if r.Hook != "OUTPUT" || !tableNamed(r, "filter", p.stderr.String()) {
		t.Errorf("first drop in the iptables-nft chain added later: hook %q table %q, want OUTPUT and filter\nstderr:\n%s", r.Hook, r.Table, p.stderr.String())
	}
	p.stop(syscall.SIGINT)
}

// tableNamed tells whether r names the table that dropped it as well as
// this kernel can: the bracket's table with netfilter links (6.18),
// the nf_tables table where nft_do_chain is probed, none where neither
// is available (5.10: nf_hook_slow only).
func tableNamed(r report.Report, nftTable, stderr string) bool {
	switch {
	case r.Table == "filter" || r.Table == nftTable:
		return true
	case r.Table == "":
		return !strings.Contains(stderr, "via netfilter links") && strings.Contains(stderr, "nft_do_chain")
	}
	return false
}

// TestLateNetnsLegacy: iptables-legacy rules in a namespace made after
// pktdrop started (a pod whose rules are iptables-legacy) are named with
// --rules too. Legacy tables send no notification and their counters are
// read from the first drop there on; the rule must be named within the
// first few drops, and never a wrong one. Not parallel: it watches every
// namespace.
func TestLateNetnsLegacy(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "iptables-legacy")
	addr := fmt.Sprintf("10.78.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	p := start(t, "watch", "-o", "json", "--rules", "--proto", "icmp", "--dst", addr)
	time.Sleep(time.Second)

	n := testnet.New(t)
	ns := n.NS("lleg")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	time.Sleep(time.Second)
	rule := "-A INPUT -d " + addr + "/32 -p icmp -j DROP"
	ns.MustRun(append([]string{"iptables-legacy"}, strings.Fields(rule)...)...)
	ping, err := ns.Start("ping", "-q", "-i", "0.05", "-c", "200", "-W", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill() }()

	ino := ns.Inode()
	var mine []report.Report
	named := -1
	for deadline := time.Now().Add(reportTimeout); named < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		mine = mine[:0]
		for _, r := range rs {
			if r.Netns == ino && r.Kind == "drop" {
				mine = append(mine, r)
			}
		}
		for i, r := range mine {
			if r.Rule != "" {
				named = i
				break
			}
		}
	}
	res := p.stop(syscall.SIGINT)
	if named < 0 {
		t.Fatalf("no drop in the late namespace named its iptables-legacy rule; reports:\n%s\nstderr:\n%s", brief(res.Reports), res.Stderr)
	}
	t.Logf("drop %d of %d in the late namespace named %q", named+1, len(mine), mine[named].Rule)
	for _, r := range mine {
		if r.Rule != "" && (r.Rule != rule || r.Chain != "INPUT" || r.Table != "filter") {
			t.Errorf("late legacy drop named table %q chain %q rule %q, want filter INPUT %q", r.Table, r.Chain, r.Rule, rule)
		}
	}
	if named > 2 {
		t.Errorf("the legacy rule was first named on drop %d, want within the first 3", named+1)
	}
}
