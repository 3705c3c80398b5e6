package testnet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// drop is one skb:kfree_skb event, tied to the device the same skb was
// last received on (net:netif_receive_skb), since the tracepoint itself
// carries no addresses or device.
type drop struct {
	Dev, Location, Reason, Line string
}

// How long perf may take to start recording and, after the trigger, to
// stop. Under software emulation (vmtest.sh) with every scenario's perf
// running in parallel, minutes are possible; beyond these perf is treated
// as unable to run rather than stalling the whole suite.
const (
	perfStartTimeout = 90 * time.Second
	perfStopTimeout  = 90 * time.Second
)

// recordDrops runs fn exactly once while perf records skb:kfree_skb and
// net:netif_receive_skb system-wide, and returns the drops. perf's workload
// is a shell that waits for a file, so recording is known to be on before
// fn runs and off only after it returns.
//
// ok is false, with the reason logged, when perf cannot record on this
// machine: not installed, refused by the kernel, or (a linux-perf built for
// another kernel running in a VM guest) never ready or never finished. fn
// still runs, and the caller falls back to the kernel's own counters.
func recordDrops(t *testing.T, fn func() error) (drops []drop, ok bool) {
	t.Helper()
	t0 := time.Now()
	p, err := startPerf(t.TempDir())
	// How long perf took is what to tune the timeouts by under emulation.
	t.Logf("perf record: %s to start", time.Since(t0).Round(time.Second))
	if err != nil {
		t.Logf("perf cannot record here, checking kernel counters only: %v", err)
		if err := fn(); err != nil {
			t.Fatalf("trigger: %v", err)
		}
		return nil, false
	}
	ferr := fn()
	// Let in-flight packets (backlog, tunnels) finish before stopping.
	time.Sleep(300 * time.Millisecond)
	drops, perr := p.stop()
	if ferr != nil {
		t.Fatalf("trigger: %v", ferr)
	}
	if perr != nil {
		t.Logf("perf cannot record here, checking kernel counters only: %v", perr)
		return nil, false
	}
	for _, w := range p.warnings {
		t.Logf("perf: %s", w)
	}
	if len(drops) == 0 {
		// Recording is system-wide and the scenario drops, so zero
		// kfree_skb events means the tracepoint was hidden from perf: a
		// BPF program attached to tracepoint skb:kfree_skb that returns 0
		// (as pktdrop's own tracepoint mechanism does, in a concurrent
		// test) suppresses the event for every perf listener.
		t.Logf("perf recorded no skb:kfree_skb at all; a BPF program on that tracepoint is filtering it out; checking kernel counters only")
		return nil, false
	}
	return drops, true
}

type perfRun struct {
	cmd    *exec.Cmd
	data   string
	done   string
	stderr *strings.Builder
	exited chan error
	// warnings are perf script's lost-event messages.
	warnings []string
}

// perfArgs: -B and -N skip the build-id pass and cache (a copy of kallsyms
// per run), --synth=no the scan of every task at start; the tracepoint
// text needs none of them, and under emulation they are what made perf
// miss its deadlines. -m 1024 (4 MiB per CPU) because recording is
// system-wide: a drop storm elsewhere on the machine, or a reader starved
// of CPU, must not overwrite the few events the scenario is judged by.
func perfArgs(data, wait string) []string {
	return []string{"record", "-q", "-a", "-B", "-N", "--synth=no", "-m", "1024", "-o", data,
		"-e", "skb:kfree_skb", "-e", "net:netif_receive_skb", "--", "sh", "-c", wait}
}

// startPerf starts perf record and returns once it records, or an error if
// it cannot: then no perf process is left behind.
func startPerf(dir string) (*perfRun, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, err
	}
	p := &perfRun{data: filepath.Join(dir, "perf.data"), done: filepath.Join(dir, "done"),
		stderr: &strings.Builder{}, exited: make(chan error, 1)}
	ready := filepath.Join(dir, "ready")
	wait := fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", ready, p.done)
	p.cmd = exec.Command("perf", perfArgs(p.data, wait)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.After(perfStartTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(ready); err == nil {
			return p, nil
		}
		select {
		case err := <-p.exited:
			// stderr is only safe to read once Wait has returned.
			return nil, fmt.Errorf("perf record exited before recording: %v: %s", err, strings.TrimSpace(p.stderr.String()))
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("perf record not recording after %s: %s", perfStartTimeout, strings.TrimSpace(p.stderr.String()))
		case <-tick.C:
		}
	}
}

// kill stops a perf that will not finish by itself. The workload shell
// survives perf's SIGKILL, so it gets its done file too.
func (p *perfRun) kill() {
	_ = os.WriteFile(p.done, nil, 0o600)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the workload, waits for perf to write its data and decodes it.
func (p *perfRun) stop() ([]drop, error) {
	if err := os.WriteFile(p.done, nil, 0o600); err != nil {
		p.kill()
		return nil, err
	}
	select {
	case err := <-p.exited:
		if err != nil {
			return nil, fmt.Errorf("perf record: %v: %s", err, strings.TrimSpace(p.stderr.String()))
		}
	case <-time.After(perfStopTimeout):
		p.kill()
		return nil, fmt.Errorf("perf record did not finish within %s after the trigger: %s", perfStopTimeout, strings.TrimSpace(p.stderr.String()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), perfStopTimeout)
	defer cancel()
	script := exec.CommandContext(ctx, "perf", "script", "-i", p.data, "-F", "event,trace")
	var serr strings.Builder
	script.Stderr = &serr
	out, err := script.Output()
	// -F applies to every event type in the file, so perf script says
	// "'trace' not valid for hardware events" and the like each time;
	// those lines say nothing about this run.
	var msgs []string
	for _, l := range strings.Split(serr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "not valid for") {
			msgs = append(msgs, l)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("perf script: %w: %s", err, strings.Join(msgs, "; "))
	}
	// Lost-event warnings explain a missing drop, so keep them for the log.
	for _, l := range msgs {
		if strings.Contains(strings.ToLower(l), "lost") {
			p.warnings = append(p.warnings, l)
		}
	}
	return parseDrops(string(out)), nil
}

// parseDrops pairs each kfree_skb with the device from the latest
// netif_receive_skb of the same skb address (perf script prints events in
// time order).
func parseDrops(script string) []drop {
	lastDev := map[string]string{}
	var drops []drop
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := fields(line)
		switch {
		case strings.Contains(line, "netif_receive_skb:"):
			lastDev[f["skbaddr"]] = f["dev"]
		case strings.Contains(line, "kfree_skb:"):
			loc := f["location"]
			if i := strings.IndexByte(loc, '+'); i > 0 {
				loc = loc[:i]
			}
			reason := ""
			if i := strings.Index(line, "reason: "); i >= 0 {
				reason = strings.TrimSpace(line[i+len("reason: "):])
			}
			drops = append(drops, drop{Dev: lastDev[f["skbaddr"]], Location: loc, Reason: reason, Line: line})
			delete(lastDev, f["skbaddr"]) // the address may be reused
		}
	}
	return drops
}

// fields splits "k=v k2=v2" tokens.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, tok := range strings.Fields(line) {
		if k, v, ok := strings.Cut(tok, "="); ok {
			m[k] = v
		}
	}
	return m
}
