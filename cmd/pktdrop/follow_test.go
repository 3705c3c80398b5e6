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
	// Before 5.12 nf_tables rules cannot be named: the hook and table
	// from the probes are still checked.
	rules := !nftRulesUnavailable(t, append([]string{"watch", "--rules"}, args...)...)
	if rules {
		args = append(args, "--rules")
	}
	p := start(t, append([]string{"watch", "-o", "json"}, args...)...)
	time.Sleep(time.Second)

	n := testnet.New(t)
	created := time.Now()
	ns := n.NS("late")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	ns.MustRun("nft", "add table ip pdlate; add chain ip pdlate in { type filter hook input priority 0; policy accept; }; "+
		"add rule ip pdlate in ip daddr "+addr+" counter drop")
	ino := ns.Inode()
	ping, err := ns.Start("ping", "-q", "-i", "0.01", "-c", "1000", "-W", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill() }()

	covered := func(r report.Report) bool {
		table := tableNamed(r, "pdlate", p.stderr.String())
		if rules {
			table = r.Table == "pdlate" && r.Chain == "in"
		}
		return r.Netns == ino && table &&
			slices.ContainsFunc(r.Path, func(s report.Step) bool { return s.Where == "INPUT" })
	}
	var first *report.Report
	deadline := time.Now().Add(reportTimeout)
	for first == nil && time.Now().Before(deadline) {
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		for _, r := range rs {
			if covered(r) {
				first = &r
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The namespace goes: pktdrop lets go of it (its trace table's
	// sockets would otherwise keep it alive).
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
		t.Fatalf("no drop in the late namespace %s with hook INPUT and table pdlate/in; reports:\n%s\nstderr:\n%s",
			ns.Name(), brief(res.Reports), res.Stderr)
	}
	// Coverage came after the last drop that lacked it and by the first
	// that had it: the delay lies between the two (the first bound is 0
	// when every drop was covered, the second then includes setting the
	// namespace up and starting ping).
	uncovered := 0
	var lower time.Duration
	for _, r := range res.Reports {
		if r.Netns == ino && r.Time.Before(first.Time) {
			uncovered++
			lower = max(lower, r.Time.Sub(created))
			if uncovered == 1 {
				t.Logf("first drop in it, %v after creation: hook %q table %q chain %q path %v", r.Time.Sub(created).Round(time.Millisecond), r.Hook, r.Table, r.Chain, r.Path)
			}
		}
	}
	if first.NetnsName != ns.Name() {
		t.Errorf("late namespace named %q, want %q", first.NetnsName, ns.Name())
	}
	upper := first.Time.Sub(created)
	t.Logf("coverage delay: between %v and %v after `ip netns add` (%d drops lacked hook or table; the first with both came %v after it)",
		lower.Round(time.Millisecond), upper.Round(time.Millisecond), uncovered, upper.Round(time.Millisecond))
	limit := time.Second
	if os.Getenv("PKTDROP_VM") != "" {
		limit = 10 * time.Second // software emulation, tens of times slower
	}
	if lower > limit {
		t.Errorf("a drop %v after the namespace was created still lacked hook or table, want coverage within %v", lower, limit)
	}
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

// TestLateChain: a chain added to a namespace after its links were
// planned (links bracket only the tables a namespace has) gets its hook
// once its first drop, lacking one, asks for a rescan.
func TestLateChain(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("10.77.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	n := testnet.New(t)
	ns := n.NS("chain")
	ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
	p := start(t, "watch", "-o", "json", "--proto", "icmp", "--dst", addr, "--netns", ns.Name())
	time.Sleep(1500 * time.Millisecond)
	ns.MustRun("nft", "add table ip pdchain; add chain ip pdchain in { type filter hook input priority 0; policy accept; }; "+
		"add rule ip pdchain in ip daddr "+addr+" drop")
	ping, err := ns.Start("ping", "-q", "-i", "0.02", "-c", "500", "-W", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill() }()
	var first, placed *report.Report
	for end := time.Now().Add(reportTimeout); placed == nil && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1])
		for i := range rs {
			if first == nil {
				first = &rs[i]
			}
			if rs[i].Hook == "INPUT" && tableNamed(rs[i], "pdchain", p.stderr.String()) {
				placed = &rs[i]
				break
			}
		}
	}
	res := p.stop(syscall.SIGINT)
	if placed == nil {
		t.Fatalf("no drop in the chain added later got hook INPUT and table filter; reports:\n%s\nstderr:\n%s", brief(res.Reports), res.Stderr)
	}
	d := placed.Time.Sub(first.Time)
	t.Logf("first drop in the new chain to the first with hook and table: %v", d.Round(time.Millisecond))
	limit := 2 * time.Second
	if os.Getenv("PKTDROP_VM") != "" {
		limit = 10 * time.Second
	}
	if d > limit {
		t.Errorf("the new chain took %v to be bracketed", d)
	}
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
