package main

import (
	"strings"
	"testing"
)

// TestBadInput: every mistake on the command line is exit status 2 and
// one line on stderr that names what was wrong; never a stack trace and
// never a half-started tracer. Parsing runs after the privilege check
// (internal/session), hence root.
func TestBadInput(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		args  []string
		names string // what the message must name
	}{
		{[]string{"--proto", "foo"}, "--proto"},
		{[]string{"--host", "10.0.0.300"}, "--host"},
		{[]string{"--src", "10.0.0.0/33"}, "--src"},
		{[]string{"--dst", "fd00::/129"}, "--dst"},
		{[]string{"--reason", "NOPE"}, "--reason"},
		{[]string{"--netns", "doesnotexist"}, "--netns"},
		{[]string{"--port", "70000"}, "--port"},
		{[]string{"--dport", "-1"}, "--dport"},
		{[]string{"--iface", "a/b"}, "--iface"},
		{[]string{"-o", "yaml"}, "--output"},
		{[]string{"--bogus"}, "--bogus"},
		{[]string{"--count", "many"}, "--count"},
		{[]string{"extra"}, "extra"},
	} {
		for _, cmd := range []string{"watch", "trace"} {
			name := cmd + " " + strings.Join(c.args, " ")
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := run(t, append([]string{cmd}, c.args...)...)
				checkUsageError(t, res, c.names)
			})
		}
	}
}

// checkUsageError wants exit 2 and exactly one stderr line, starting with
// "pktdrop: " and containing names.
func checkUsageError(t *testing.T, res result, names string) {
	t.Helper()
	if res.Code != 2 {
		t.Errorf("exit code %d, want 2", res.Code)
	}
	lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "pktdrop: ") {
		t.Errorf("stderr is not one line starting with %q:\n%s", "pktdrop: ", res.Stderr)
	}
	if !strings.Contains(res.Stderr, names) {
		t.Errorf("stderr does not name %q: %s", names, res.Stderr)
	}
	if strings.Contains(res.Stderr+res.Stdout, "goroutine") {
		t.Errorf("Go stack trace in output:\n%s%s", res.Stdout, res.Stderr)
	}
	if res.Stdout != "" {
		t.Errorf("stdout should be empty on bad input, got:\n%s", res.Stdout)
	}
}

// TestProbes: `pktdrop probes` lists every point with the mechanism it
// got. Expectations come from the kernel: without kprobes and fentry
// (6.18 here) ip_forward has none and says kprobes are missing; with them
// (the VM kernels) it must have a mechanism.
func TestProbes(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	res := run(t, "probes")
	if res.Code != 0 {
		t.Fatalf("pktdrop probes exited %d; stderr:\n%s", res.Code, res.Stderr)
	}
	rows := probeRows(res.Stdout)
	kfree, ok := rows["kfree_skb"]
	if !ok || kfree.mechanism == "" || kfree.mechanism == "none" {
		t.Errorf("kfree_skb has no mechanism: %+v\n%s", kfree, res.Stdout)
	}
	fwd, ok := rows["ip_forward"]
	switch {
	case !ok:
		t.Errorf("no ip_forward row:\n%s", res.Stdout)
	case kernelHasKprobes():
		if fwd.mechanism == "none" || fwd.mechanism == "" {
			t.Errorf("kernel has kprobes but ip_forward got no mechanism: %+v", fwd)
		}
	default:
		if fwd.mechanism != "none" {
			t.Errorf("kernel has no kprobes, yet ip_forward mechanism is %q", fwd.mechanism)
		}
		if !strings.Contains(fwd.notUsed, "kprobes") {
			t.Errorf("ip_forward does not say kprobes are missing: %q", fwd.notUsed)
		}
	}
}

type probeRow struct{ mechanism, adds, notUsed string }

// probeRows reads the table's rows by probe point name. Cells are split
// on the box-drawing or ASCII column separator.
func probeRows(out string) map[string]probeRow {
	rows := map[string]probeRow{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.ReplaceAll(line, "│", "|")
		cells := strings.Split(line, "|")
		if len(cells) < 6 {
			continue
		}
		name := strings.TrimSpace(cells[1])
		if name == "" || strings.EqualFold(name, "probe point") {
			continue
		}
		rows[name] = probeRow{strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])}
	}
	return rows
}
