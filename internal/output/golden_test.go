package output_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/recorded"
	"github.com/pktdrop/pktdrop/internal/report"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/<name>, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(recorded.Dir(), "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/output -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func loadCases(t testing.TB) []*recorded.Case {
	t.Helper()
	cases, err := recorded.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func jsonLine(t testing.TB, r *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := output.New(&b, "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Each recorded event goes through the live pipeline (Build, Infer) on a
// fake of the system it was recorded on; text and JSON must match.
func TestRecordedEventsGolden(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			r := c.Report()
			golden(t, c.Name+".txt", []byte(output.Text(r)))
			golden(t, c.Name+".json", jsonLine(t, r))
		})
	}
}

// A recorded event must be something the ring buffer can carry: it
// survives Encode and Decode unchanged (at most 32 steps, names that fit).
func TestRecordedEventsAreValidRecords(t *testing.T) {
	for _, c := range loadCases(t) {
		var got event.Event
		if err := event.Decode(event.Encode(&c.Event), &got); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.Event) {
			t.Errorf("%s: the event does not survive Encode/Decode:\n got %+v\nwant %+v", c.Name, got, c.Event)
		}
	}
}

func TestSummaryGolden(t *testing.T) {
	var out bytes.Buffer
	w, err := output.New(&out, "text")
	if err != nil {
		t.Fatal(err)
	}
	// Twice each, and the FORWARD drop a third time, so counts order rows.
	cases := loadCases(t)
	for _, c := range cases {
		for range 2 {
			if err := w.Write(c.Report()); err != nil {
				t.Fatal(err)
			}
		}
		if c.Name == "forward-policy-drop" {
			if err := w.Write(c.Report()); err != nil {
				t.Fatal(err)
			}
		}
	}
	var sum bytes.Buffer
	if err := w.Summary().Write(&sum, output.Lost{Ringbuf: 3, Decode: 1}); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.txt", sum.Bytes())

	var empty bytes.Buffer
	if err := output.NewSummary().Write(&empty, output.Lost{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-empty.txt", empty.Bytes())
}
