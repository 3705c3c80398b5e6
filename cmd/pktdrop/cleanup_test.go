package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// releaseTimeout: the kernel frees programs and links asynchronously
// (RCU) after the last file descriptor is closed.
const releaseTimeout = 5 * time.Second

// progPrefixes are the name prefixes of pktdrop's BPF programs (names are
// cut to 15 characters by the kernel).
var progPrefixes = []string{"tpb_", "tp_", "on_nf_", "fentry_", "fexit_", "kprobe_", "kretprobe_"}

// TestLeavesNothingBehind: however pktdrop ends (SIGKILL, SIGINT, SIGTERM),
// none of its BPF programs or links stays attached, nor (with --rules)
// its nftables trace table. SIGINT and SIGTERM end it cleanly: exit 0
// and the summary. Each subtest watches its own fresh namespace (which
// gets the netfilter links where they are used), so they run in parallel.
func TestLeavesNothingBehind(t *testing.T) {
	signals := []struct {
		name string
		sig  syscall.Signal
	}{{"SIGKILL", syscall.SIGKILL}, {"SIGINT", syscall.SIGINT}, {"SIGTERM", syscall.SIGTERM}}
	for _, rules := range []bool{false, true} {
		for _, sg := range signals {
			sig, name := sg.sig, sg.name
			if rules {
				name += "_rules"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				requireRoot(t)
				privtest.RequireCmd(t, "bpftool")
				ns := testnet.New(t).NS("watched")
				args := []string{"watch", "--netns", ns.Name()}
				if rules {
					privtest.RequireCmd(t, "nft")
					args = append(args, "--rules")
					if nftRulesUnavailable(t, args...) {
						return
					}
				}
				p := start(t, args...)
				progs := bpfIDs(t, p.cmd.Process.Pid, "prog_id")
				links := bpfIDs(t, p.cmd.Process.Pid, "link_id")
				names := progNames(t, progs)
				if len(progs) == 0 || len(links) == 0 {
					t.Fatalf("running pktdrop holds %d programs and %d links; want some of each", len(progs), len(links))
				}
				for n := range names {
					if !hasAnyPrefix(n, progPrefixes) {
						t.Errorf("program %q of pktdrop has an unexpected name", n)
					}
				}
				var tables string
				if rules {
					tables = nftTables(t, ns)
					if !strings.Contains(tables, "pktdrop") {
						t.Errorf("--rules installed no pktdrop table in %s: %q", ns.Name(), tables)
					}
				}
				res := p.stop(sig)
				if sig != syscall.SIGKILL {
					if res.Code != 0 {
						t.Errorf("exit code %d after %v, want 0; stderr:\n%s", res.Code, sig, res.Stderr)
					}
					if !summaryLine.MatchString(res.Stdout) {
						t.Errorf("no summary after %v; stdout:\n%s", sig, res.Stdout)
					}
				}
				waitReleased(t, "prog", progs)
				waitReleased(t, "link", links)
				if rules {
					if after := nftTables(t, ns); strings.Contains(after, "pktdrop") {
						t.Errorf("nftables table left behind after %v: %q", sig, after)
					}
				}
			})
		}
	}
}

// summaryLine is the first line of the summary ("3 drops, 0 events lost
// (ring buffer full: 0, undecodable: 0)", with traced packets in between).
var summaryLine = regexp.MustCompile(`(?m)^(\d+) drops, (?:\d+ traced packets, )?(?:\d+ benign frees \(not drops\), )?\d+ events lost \(ring buffer full: \d+, undecodable: \d+\)$`)

// dropLine is the first line of a dropped packet's text block.
var dropLine = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d+ DROP `)

// TestSummary: after SIGINT, text output ends with the summary: the count
// line and a table row for the drop's reason, device and namespace.
func TestSummary(t *testing.T) {
	t.Parallel()
	s := buildScenario(t, ok(testnet.ForwardPolicyDrop))
	p := start(t, append([]string{"watch"}, scenarioFilter(s)...)...)
	if err := s.Trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	deadline := time.Now().Add(reportTimeout)
	for !dropLine.MatchString(p.stdout.String()) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res := p.stop(syscall.SIGINT)
	if res.Code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0; stderr:\n%s", res.Code, res.Stderr)
	}
	drops := len(dropLine.FindAllString(res.Stdout, -1))
	if drops == 0 {
		t.Fatalf("no drop printed; stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	}
	loc := summaryLine.FindAllStringSubmatchIndex(res.Stdout, -1)
	if len(loc) != 1 {
		t.Fatalf("want exactly one summary line, found %d; stdout:\n%s", len(loc), res.Stdout)
	}
	if n, _ := strconv.Atoi(res.Stdout[loc[0][2]:loc[0][3]]); n != drops {
		t.Errorf("summary counts %d drops, %d were printed", n, drops)
	}
	table := res.Stdout[loc[0][1]:]
	want := s.Expect.Reason
	if !kernelHasReasons(t) {
		want = s.Expect.Cause // the summary falls back to the cause
	}
	for _, w := range []string{want, s.Expect.Iface, s.Expect.Netns, strconv.Itoa(drops)} {
		if !strings.Contains(table, w) {
			t.Errorf("summary table lacks %q:\n%s", w, table)
		}
	}
	// Nothing after the table: the summary is the end of the output.
	lines := strings.Split(strings.TrimRight(table, "\n "), "\n")
	if last := lines[len(lines)-1]; !strings.ContainsAny(last, "└+") {
		t.Errorf("output does not end with the summary table; last line %q", last)
	}
}

// bpfIDs lists the BPF program or link ids (key "prog_id" or "link_id")
// that process pid holds file descriptors for.
func bpfIDs(t *testing.T, pid int, key string) []int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fdinfo")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var ids []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		// A link's fdinfo names its program too: count programs only
		// from program fds (no link_id line).
		if key == "prog_id" && strings.Contains(string(b), "link_id:") {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key+":"); ok {
				if id, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

// bpftoolIDs returns the ids and names bpftool lists for "prog" or "link".
// bpftool fails when an object it enumerated is gone before it opens it
// (other tests' pktdrops exit meanwhile): such a failure is retried.
func bpftoolIDs(t *testing.T, kind string) map[int]string {
	t.Helper()
	var out []byte
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if out, err = exec.Command("bpftool", "-j", kind, "list").Output(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bpftool %s list: %v", kind, err)
	}
	var objs []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &objs); err != nil {
		t.Fatalf("bpftool %s list: %v", kind, err)
	}
	m := map[int]string{}
	for _, o := range objs {
		m[o.ID] = o.Name
	}
	return m
}

// progNames names the programs with ids.
func progNames(t *testing.T, ids []int) map[string]bool {
	t.Helper()
	all := bpftoolIDs(t, "prog")
	names := map[string]bool{}
	for _, id := range ids {
		if n, ok := all[id]; ok {
			names[n] = true
		}
	}
	return names
}

// waitReleased waits until none of ids is listed by bpftool any more.
// Ids are not reused soon (they count up), so a listed id is ours.
func waitReleased(t *testing.T, kind string, ids []int) {
	t.Helper()
	deadline := time.Now().Add(releaseTimeout)
	for {
		all := bpftoolIDs(t, kind)
		var left []string
		for _, id := range ids {
			if n, ok := all[id]; ok {
				left = append(left, strconv.Itoa(id)+" "+n)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d of %d BPF %ss still loaded %v after pktdrop ended: %v", len(left), len(ids), kind, releaseTimeout, left)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nftTables lists the nftables tables in ns.
func nftTables(t *testing.T, ns *testnet.NS) string {
	t.Helper()
	out, err := ns.Run("nft", "list", "tables")
	if err != nil {
		t.Fatalf("nft list tables: %v", err)
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestTwoAtOnce: two pktdrops watching the same namespace (the kernel
// allows one netfilter BPF program per hook priority, so the second
// brackets next to the first) both report the drop in full, the same way,
// and both exit cleanly.
func TestTwoAtOnce(t *testing.T) {
	t.Parallel()
	s := buildScenario(t, ok(testnet.ForwardPolicyDrop))
	args := append(append([]string{"watch"}, scenarioFilter(s)...), "-o", "json")
	a, b := start(t, args...), start(t, args...)
	if err := s.Trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	a.waitReports(1, reportTimeout)
	b.waitReports(1, reportTimeout)
	ra, rb := a.stop(syscall.SIGINT), b.stop(syscall.SIGINT)
	for i, res := range []result{ra, rb} {
		if res.Code != 0 {
			t.Errorf("pktdrop %d: exit %d; stderr:\n%s", i+1, res.Code, res.Stderr)
		}
		checkDrop(t, s, withName("ForwardPolicyDrop", nil, forwardPolicyWords), res)
		if len(res.Reports) == 0 {
			t.Errorf("pktdrop %d reported nothing; stderr:\n%s", i+1, res.Stderr)
		}
	}
	if len(ra.Reports) > 0 && len(rb.Reports) > 0 {
		if pa, pb := pathWhere(ra.Reports[0]), pathWhere(rb.Reports[0]); pa != pb || ra.Reports[0].Table != rb.Reports[0].Table {
			t.Errorf("the two pktdrops saw different paths or tables:\n%s (%s)\n%s (%s)", pa, ra.Reports[0].Table, pb, rb.Reports[0].Table)
		}
	}
}

func pathWhere(r report.Report) string {
	var b strings.Builder
	for _, s := range r.Path {
		fmt.Fprintf(&b, "%s@%s %s; ", s.Where, s.Iface, s.Detail)
	}
	return b.String()
}
