package nftrace

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata recordings (privileged tests) and golden files")

// capture runs a tracer in the labelled namespaces (path -> label) while
// trigger sends traffic, and returns the first Decision pick accepts. The
// events and rulesets are checked to replay to the same Decision and, with
// -update, saved as testdata/<name>.rec.json with its golden output (not
// when name is empty). ok is false, with nothing traced, when the kernel
// predates the table owner flag and Start refused as it must (startTracer);
// the caller then has nothing more to check.
func capture(t *testing.T, name string, labels map[string]string, m Match, trigger func(), pick func(Decision) bool) (_ Decision, ok bool) {
	t.Helper()
	var paths []string
	for p := range labels {
		paths = append(paths, p)
	}
	var mu sync.Mutex
	var events []Event
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := startTracer(t, ctx, Options{Netns: paths, Match: m}, func(ev Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	if tr == nil {
		return Decision{}, false
	}
	defer tr.Close()
	go trigger()
	var got *Decision
	var seen []string
	for got == nil {
		select {
		case d := <-tr.Decisions():
			js, _ := json.Marshal(d)
			seen = append(seen, string(js))
			if pick(d) {
				got = &d
			}
		case <-ctx.Done():
			t.Fatalf("no matching decision; saw:\n%s", strings.Join(seen, "\n"))
		}
	}
	if err := tr.Close(); err != nil {
		t.Errorf("close tracer: %v", err)
	}
	rec := Recording{Netns: map[string]RecordedNetns{}}
	for _, st := range tr.ns {
		rec.Netns[labels[st.h.path]] = RecordedNetns{Inode: st.h.inode, Ruleset: *st.rs}
	}
	mu.Lock()
	for _, ev := range events {
		ev.Netns = labels[ev.Netns]
		rec.Events = append(rec.Events, ev)
	}
	mu.Unlock()
	checkReplay(t, rec, *got, labels[got.Netns])
	if *update && name != "" {
		writeJSON(t, filepath.Join("testdata", name+".rec.json"), rec)
		writeJSON(t, filepath.Join("testdata", name+".golden.json"), Replay(rec, 0))
	}
	js, _ := json.MarshalIndent(got, "", "  ")
	t.Logf("decision:\n%s", js)
	return *got, true
}

// checkReplay proves the pure path reproduces the live Decision.
func checkReplay(t *testing.T, rec Recording, live Decision, label string) {
	t.Helper()
	live.Netns = label
	want, _ := json.Marshal(live)
	for _, d := range Replay(rec, 0) {
		if d.TraceID == live.TraceID {
			if got, _ := json.Marshal(d); string(got) != string(want) {
				t.Errorf("replay differs from live:\nlive   %s\nreplay %s", want, got)
			}
			return
		}
	}
	t.Errorf("replay has no decision for trace id %#x", live.TraceID)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	js, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReplayGolden replays every recording in testdata; run the privileged
// tests with -update to re-record, or this test alone with -update to
// regenerate golden files after an intended change to the grouping logic.
func TestReplayGolden(t *testing.T) {
	recs, _ := filepath.Glob(filepath.Join("testdata", "*.rec.json"))
	if len(recs) == 0 {
		t.Skip("no recordings in testdata")
	}
	for _, path := range recs {
		name := strings.TrimSuffix(filepath.Base(path), ".rec.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var rec Recording
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(Replay(rec, 0), "", " ")
			golden := filepath.Join("testdata", name+".golden.json")
			if *update && name != "" {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
				t.Errorf("replay of %s differs from %s:\n%s", path, golden, got)
			}
		})
	}
}
