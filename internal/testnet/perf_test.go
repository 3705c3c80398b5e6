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

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// drop is one skb:kfree_skb event, tied to the device the same skb was
// last received on (net:netif_receive_skb), since the tracepoint itself
// carries no addresses or device.
type drop struct {
	Dev, Location, Reason, Line string
}

// recordDrops runs fn while perf records skb:kfree_skb and
// net:netif_receive_skb system-wide, and returns the drops. perf's
// workload is a shell that waits for a file, so recording is known to be
// on before fn runs and off only after it returns.
func recordDrops(t *testing.T, fn func() error) []drop {
	t.Helper()
	privtest.RequireCmd(t, "perf")
	dir := t.TempDir()
	data, ready, done := filepath.Join(dir, "perf.data"), filepath.Join(dir, "ready"), filepath.Join(dir, "done")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait := fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", ready, done)
	cmd := exec.CommandContext(ctx, "perf", "record", "-q", "-a", "-o", data,
		"-e", "skb:kfree_skb", "-e", "net:netif_receive_skb", "--", "sh", "-c", wait)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		privtest.Unavailable(t, fmt.Sprintf("perf record: %v", err))
	}
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("perf never started: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ferr := fn()
	// Let in-flight packets (backlog, tunnels) finish before stopping.
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("perf record: %v: %s", err, stderr.String())
	}
	if ferr != nil {
		t.Fatalf("trigger: %v", ferr)
	}
	out, err := exec.Command("perf", "script", "-i", data, "-F", "event,trace").Output()
	if err != nil {
		t.Fatalf("perf script: %v", err)
	}
	return parseDrops(string(out))
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
