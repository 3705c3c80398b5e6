package main

// --pcap: the packets pktdrop reports, read back by the real readers
// (tshark, tcpdump, capinfos) that people open such files with.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// reader runs one of Wireshark's or tcpdump's tools and returns stdout.
func reader(t *testing.T, name string, args ...string) string {
	t.Helper()
	privtest.RequireCmd(t, name)
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// frame is one row of `tshark -T fields`.
type frame struct {
	num, iface, src, dst, caplen, length, comment string
}

var frameFields = []string{"frame.number", "frame.interface_name", "ip.src", "ip.dst", "frame.cap_len", "frame.len", "frame.comment"}

func tsharkFrames(t *testing.T, file string, extra ...string) []frame {
	t.Helper()
	args := []string{"-r", file, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"}
	for _, f := range frameFields {
		args = append(args, "-e", f)
	}
	return parseFrames(reader(t, "tshark", append(args, extra...)...))
}

func parseFrames(out string) []frame {
	var fs []frame
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p := strings.SplitN(l, "|", len(frameFields))
		if len(p) < len(frameFields) {
			continue
		}
		fs = append(fs, frame{p[0], p[1], p[2], p[3], p[4], p[5], p[6]})
	}
	return fs
}

func framesOn(fs []frame, iface string) []frame {
	var out []frame
	for _, f := range fs {
		if f.iface == iface {
			out = append(out, f)
		}
	}
	return out
}

func showFrames(fs []frame) string {
	var b strings.Builder
	for _, f := range fs {
		c := f.comment
		if len(c) > 160 {
			c = c[:160] + "…"
		}
		fmt.Fprintf(&b, "%s %s %s > %s caplen %s len %s: %s\n", f.num, f.iface, f.src, f.dst, f.caplen, f.length, c)
	}
	return b.String()
}

// TestPcapDropsInSeveralNamespaces: the five drop field cases (an iptables
// FORWARD policy DROP, forwarding off, no route, strict rp_filter on
// tunl0, UDP to a closed port), each in namespaces of its own, in one
// pcapng file. It watches every namespace, so it is not parallel (see
// main_test.go).
func TestPcapDropsInSeveralNamespaces(t *testing.T) {
	cases := []struct {
		build func(testing.TB) *testnet.Scenario
		words []string
	}{
		{testnet.ForwardPolicyDrop, []string{"hook FORWARD"}},
		{testnet.ForwardingDisabled, []string{"net.ipv4.ip_forward=0"}},
		{testnet.NoRoute, []string{"no route"}},
		{testnet.RPFilterStrict, []string{"reverse-path", "tunl0"}},
		{testnet.UDPNoListener, []string{"udp port 31337"}},
	}
	var ss []*testnet.Scenario
	for _, c := range cases {
		ss = append(ss, buildScenario(t, ok(c.build)))
	}
	file := filepath.Join(t.TempDir(), "drops.pcapng")
	// Every scenario's client has this address; others' tests on this
	// machine may use it too, so frames are picked by interface below.
	src := ss[0].Expect.Src
	p := start(t, "watch", "--src", src, "-w", file, "-o", "json")
	for _, s := range ss {
		if err := s.Trigger(); err != nil {
			t.Errorf("%s: trigger: %v", s.Name, err)
		}
	}
	// Others' tests may add reports: wait for one of each scenario's.
	for deadline := time.Now().Add(reportTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		seen := map[string]bool{}
		out := p.stdout.String()
		rs, _ := parseReports(out[:strings.LastIndexByte(out, '\n')+1]) // whole lines only
		for _, r := range rs {
			seen[r.NetnsName] = true
		}
		all := true
		for _, s := range ss {
			all = all && seen[s.Expect.Netns]
		}
		if all {
			break
		}
	}
	res := p.stop(syscall.SIGINT)
	if res.Code != 0 {
		t.Fatalf("pktdrop exited %d; stderr:\n%s", res.Code, res.Stderr)
	}

	all := tsharkFrames(t, file)
	t.Logf("tshark:\n%s", showFrames(all))
	reasons := kernelHasReasons(t)
	ifaceOf := func(s *testnet.Scenario) string { return s.Expect.Iface + "@" + s.Expect.Netns }
	for i, s := range ss {
		fs := framesOn(all, ifaceOf(s))
		if len(fs) == 0 {
			t.Errorf("%s: no frame on interface %s", s.Name, ifaceOf(s))
			continue
		}
		f := fs[0]
		if f.src != s.Expect.Src || f.dst != s.Expect.Dst {
			t.Errorf("%s: frame %s on %s: %s > %s, want %s > %s", s.Name, f.num, f.iface, f.src, f.dst, s.Expect.Src, s.Expect.Dst)
		}
		words := append([]string{"DROP", "cause  " + s.Expect.Cause + ":", "fix", "path", `"cause":"` + s.Expect.Cause + `"`}, cases[i].words...)
		if reasons {
			words = append(words, "reason "+s.Expect.Reason, `"reason":"`+s.Expect.Reason+`"`)
		}
		for _, w := range words {
			if !strings.Contains(f.comment, w) {
				t.Errorf("%s: frame %s comment lacks %q:\n%s", s.Name, f.num, w, f.comment)
			}
		}
	}
	if t.Failed() {
		t.Logf("pktdrop stderr:\n%s", res.Stderr)
	}

	// A display filter on the comments selects the netfilter drops only.
	fwd, udp := ss[0], ss[4]
	filter := `frame.comment contains "cause  netfilter:"`
	if reasons {
		filter = `frame.comment contains "NETFILTER_DROP"`
	}
	sel := tsharkFrames(t, file, "-Y", filter)
	if n := len(framesOn(sel, ifaceOf(fwd))); n == 0 || n != len(framesOn(all, ifaceOf(fwd))) || len(framesOn(sel, ifaceOf(udp))) != 0 {
		t.Errorf("tshark -Y '%s' selected:\n%s", filter, showFrames(sel))
	}

	// One interface per (netns, device), all Ethernet, so that tcpdump
	// reads the file whole.
	ci := reader(t, "capinfos", file)
	want := []string{"Capture comment:", "watch --src " + src + " -w " + file, "Encapsulation = Ethernet"}
	for _, s := range ss {
		want = append(want, "Name = "+ifaceOf(s))
	}
	for _, w := range want {
		if !strings.Contains(ci, w) {
			t.Errorf("capinfos lacks %q:\n%s", w, ci)
		}
	}
	td := reader(t, "tcpdump", "-n", "-r", file)
	for _, w := range []string{src + " > " + fwd.Expect.Dst + ": ICMP echo request",
		src + " > " + ss[3].Expect.Dst + ": ICMP echo request", // also the rp_filter drop, on tunl0
		fmt.Sprintf(" > %s.%d: UDP", udp.Expect.Dst, udp.Expect.DstPort)} {
		if !strings.Contains(td, w) {
			t.Errorf("tcpdump -r lacks %q:\n%s", w, td)
		}
	}
}

// TestPcapStdoutIntoTshark: `-w -` piped into `tshark -r -`, read while
// pktdrop runs, with the text reports on stderr; and --snaplen cuts the
// frame (caplen < len) and says so.
func TestPcapStdoutIntoTshark(t *testing.T) {
	t.Parallel()
	s := buildScenario(t, ok(testnet.UDPNoListener))
	privtest.RequireCmd(t, "tshark")
	ready := filepath.Join(t.TempDir(), "ready")
	pd := exec.Command(bin, append([]string{"watch", "-w", "-", "--snaplen", "40", "--ready-file", ready}, scenarioFilter(s)...)...)
	var pdErr lockedBuffer
	pd.Stderr = &pdErr
	pipe, err := pd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ts := exec.Command("tshark", "-l", "-r", "-", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a")
	for _, f := range frameFields {
		ts.Args = append(ts.Args, "-e", f)
	}
	ts.Stdin = pipe
	var tsOut, tsErr lockedBuffer
	ts.Stdout, ts.Stderr = &tsOut, &tsErr
	pdDone, tsDone := make(chan error, 1), make(chan error, 1)
	func() {
		loading <- struct{}{}
		defer func() { <-loading }()
		if err := pd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { pdDone <- pd.Wait() }()
		t.Cleanup(func() { _ = pd.Process.Kill() }) // ErrProcessDone once it exited
		if err := ts.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { tsDone <- ts.Wait() }()
		t.Cleanup(func() { _ = ts.Process.Kill() })
		waitFile(t, ready, pdDone, &pdErr)
	}()
	if err := s.Trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	// The frame reaches tshark while pktdrop still runs: the file is
	// flushed after each burst, as a live Wireshark (-k -i -) needs.
	deadline := time.Now().Add(reportTimeout)
	for time.Now().Before(deadline) && !strings.Contains(tsOut.String(), s.Expect.Dst) {
		time.Sleep(50 * time.Millisecond)
	}
	live := tsOut.String()
	_ = pd.Process.Signal(syscall.SIGINT)
	if err := waitDone(pdDone); err != nil {
		t.Errorf("pktdrop: %v; stderr:\n%s", err, pdErr.String())
	}
	if err := waitDone(tsDone); err != nil {
		t.Errorf("tshark -r -: %v; stderr:\n%s", err, tsErr.String())
	}
	fs := parseFrames(tsOut.String())
	if !strings.Contains(live, s.Expect.Dst) {
		t.Errorf("tshark saw no frame while pktdrop ran; in the end it saw:\n%s", showFrames(fs))
	}
	if len(fs) == 0 {
		t.Fatalf("tshark -r - read no frame; pktdrop stderr:\n%s\ntshark stderr:\n%s", pdErr.String(), tsErr.String())
	}
	f := fs[0]
	// 14 (Ethernet) + 20 (IP) + 8 (UDP) + the trigger's payload.
	wantLen := strconv.Itoa(14 + 20 + 8 + len("pktdrop testnet probe\n"))
	if f.dst != s.Expect.Dst || f.caplen != "40" || f.length != wantLen {
		t.Errorf("frame: %s > %s caplen %s len %s; want > %s caplen 40 len %s", f.src, f.dst, f.caplen, f.length,
			s.Expect.Dst, wantLen)
	}
	if w := "truncated: captured 40 of " + wantLen + " bytes (--snaplen 40)"; !strings.Contains(f.comment, w) {
		t.Errorf("comment lacks %q:\n%s", w, f.comment)
	}
	// The reports went to stderr, the file alone to stdout.
	if !strings.Contains(pdErr.String(), "DROP udp "+s.Expect.Src) {
		t.Errorf("no text report on stderr:\n%s", pdErr.String())
	}
}

// TestPcapTraceDelivered: `trace -w` writes packets that were delivered,
// with the path that ends in "delivered".
func TestPcapTraceDelivered(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	n := testnet.New(t)
	c, srv := n.NS("client"), n.NS("server")
	const src, dst = "10.231.1.2", "10.231.1.3"
	n.Link(c, "cl0", src+"/24", srv, "sv0", dst+"/24")
	file := filepath.Join(t.TempDir(), "trace.pcapng")
	res := watch(t, func() error {
		ok, err := c.Ping(dst, 2, 2*time.Second)
		if err == nil && !ok {
			err = fmt.Errorf("ping %s got no reply", dst)
		}
		return err
	}, 1, "trace", "--netns", srv.Name(), "--proto", "icmp", "--src", src, "-w", file)
	all := tsharkFrames(t, file)
	var got *frame
	for i, f := range all {
		if f.src == src && f.dst == dst && strings.Contains(f.comment, "TRACE icmp") {
			got = &all[i]
			break
		}
	}
	if got == nil {
		t.Fatalf("no traced echo request in the file:\n%s\npktdrop stderr:\n%s", showFrames(all), res.Stderr)
	}
	for _, w := range []string{"→ delivered", `"kind":"trace"`} {
		if !strings.Contains(got.comment, w) {
			t.Errorf("comment lacks %q:\n%s", w, got.comment)
		}
	}
	if want := "sv0@" + srv.Name(); got.iface != want {
		t.Errorf("interface %q, want %q", got.iface, want)
	}
}

// TestPcapBadSnaplen: one line and exit 2, before anything is loaded.
func TestPcapBadSnaplen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, v := range []string{"0", "-1", "16385", "lots"} {
		for _, cmd := range []string{"watch", "trace"} {
			file := filepath.Join(dir, cmd+v+".pcapng")
			res := run(t, cmd, "-w", file, "--snaplen", v)
			lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
			if res.Code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "snaplen") {
				t.Errorf("%s --snaplen %s: exit %d, stderr %q; want 2 and one line about --snaplen", cmd, v, res.Code, res.Stderr)
			}
			if _, err := os.Stat(file); err == nil {
				t.Errorf("%s --snaplen %s left %s behind", cmd, v, file)
			}
		}
	}
}

func waitFile(t *testing.T, path string, done chan error, stderr *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("pktdrop exited before it was ready (%v); stderr:\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("pktdrop not ready after %v; stderr:\n%s", readyTimeout, stderr.String())
}

func waitDone(done chan error) error {
	select {
	case err := <-done:
		return err
	case <-time.After(stopTimeout):
		return fmt.Errorf("did not exit within %v", stopTimeout)
	}
}

// TestPcapRules: with --rules reports wait for their rule before they are
// written; the packet written is still the one the report is about, and
// its comment names the rule.
func TestPcapRules(t *testing.T) {
	t.Parallel()
	s := buildScenario(t, testnet.UserChainDropLegacy)
	file := filepath.Join(t.TempDir(), "rules.pcapng")
	res := watch(t, s.Trigger, 1, append(scenarioFilter(s), "--rules", "-w", file)...)
	fs := tsharkFrames(t, file)
	if len(fs) == 0 || len(fs) != len(res.Reports) {
		t.Fatalf("%d frames for %d reports:\n%s\npktdrop stderr:\n%s", len(fs), len(res.Reports), showFrames(fs), res.Stderr)
	}
	// The packet's own sequence number (from its bytes) is the one its
	// comment reports.
	seqs := strings.Fields(reader(t, "tshark", "-r", file, "-T", "fields", "-e", "icmp.seq"))
	for i, f := range fs {
		want := "seq ? "
		if i < len(seqs) {
			want = "seq " + seqs[i] + " "
		}
		if f.src != s.Expect.Src || f.dst != s.Expect.Dst || !strings.Contains(f.comment, want) {
			t.Errorf("frame %s: %s > %s, comment lacks %q (the report of another packet?):\n%s", f.num, f.src, f.dst, want, f.comment)
		}
		if w := "rule " + strconv.Itoa(s.Expect.RuleIndex) + ": " + s.Expect.Rule; !strings.Contains(f.comment, w) {
			t.Errorf("frame %s comment lacks %q:\n%s", f.num, w, f.comment)
		}
	}
}
