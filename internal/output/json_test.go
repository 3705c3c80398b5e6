package output_test

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/recorded"
	"github.com/pktdrop/pktdrop/internal/report"
)

// The keys README "JSON output" documents that are on every line, empty
// or not, so consumers (jq, log pipelines) need no existence checks.
// tcp_flags, evidence, chain, rule, rule_handle, verdict, steps_lost and a
// step's detail are documented as conditional and may be omitted.
var (
	reportKeys = []string{"time", "kind", "reason", "location", "netns", "netns_name", "iface", "ifindex", "family",
		"proto", "src", "dst", "sport", "dport", "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "len", "mark", "cause",
		"explanation", "hint", "hook", "table", "path", "nat"}
	stepKeys = []string{"where", "netns", "netns_name", "iface", "src", "dst", "sport", "dport"}
	natKeys  = []string{"hook", "netns_name", "before", "after", "by"}
)

func missing(obj map[string]any, keys []string) []string {
	var out []string
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func TestJSONHasEveryDocumentedKey(t *testing.T) {
	reports := map[string]*report.Report{"zero report": {Path: []report.Step{{}}, NAT: []report.NAT{{}}}}
	for _, c := range loadCases(t) {
		reports[c.Name] = c.Report()
	}
	sawStep, sawNAT := false, false
	for name, r := range reports {
		var obj map[string]any
		if err := json.Unmarshal(jsonLine(t, r), &obj); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m := missing(obj, reportKeys); m != nil {
			t.Errorf("%s: JSON lacks %v", name, m)
		}
		for _, list := range []struct {
			key  string
			keys []string
			saw  *bool
		}{{"path", stepKeys, &sawStep}, {"nat", natKeys, &sawNAT}} {
			items, ok := obj[list.key].([]any)
			if !ok {
				t.Errorf("%s: %q is %T, want a list", name, list.key, obj[list.key])
				continue
			}
			for i, it := range items {
				*list.saw = true
				if m := missing(it.(map[string]any), list.keys); m != nil {
					t.Errorf("%s: %s[%d] lacks %v", name, list.key, i, m)
				}
			}
		}
	}
	if !sawStep || !sawNAT {
		t.Errorf("no path step (%v) or nat entry (%v) was checked", sawStep, sawNAT)
	}
}

// jsonText is s as it comes back from JSON: encoding/json replaces each
// byte that is not valid UTF-8 with U+FFFD (JSON text must be UTF-8).
func jsonText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s) // an invalid byte: RuneError, n 1
		b.WriteRune(r)
		s = s[n:]
	}
	return b.String()
}

type fuzzFields struct {
	kind, reason, location, iface, src, dst, cause, expl, hint, hook, table, where, evKey, evVal string
	netns                                                                                        uint32
	sport, dport                                                                                 uint16
	icmp                                                                                         uint8
	nanos                                                                                        int64
	nsteps                                                                                       uint8
}

// makeReport builds a report from fuzzed fields; text normalizes strings as
// they must come back from JSON.
func makeReport(f fuzzFields, text func(string) string) *report.Report {
	r := &report.Report{Time: time.Unix(0, f.nanos).UTC(), Kind: text(f.kind), Reason: text(f.reason),
		Location: text(f.location), Netns: f.netns, NetnsName: text(f.iface + "@" + f.where), Iface: text(f.iface),
		Ifindex: f.netns >> 20, Family: text(f.table), Proto: text(f.hook), Src: text(f.src), Dst: text(f.dst),
		Sport: f.sport, Dport: f.dport, ICMPType: f.icmp, ICMPCode: ^f.icmp, ICMPID: f.sport ^ f.dport, ICMPSeq: f.dport,
		TCPFlags: text(f.evVal), Len: f.netns, Mark: uint32(f.nanos), Cause: text(f.cause), Explanation: text(f.expl),
		Hint: text(f.hint), Hook: text(f.hook), Table: text(f.table), Chain: text(f.where), Rule: text(f.expl),
		RuleHandle: uint64(f.nanos), RuleIndex: int(f.nsteps) - 3, Verdict: text(f.kind), StepsLost: int(f.nsteps), Path: []report.Step{},
		NAT: []report.NAT{}}
	if f.evKey != "" {
		r.Evidence = map[string]string{text(f.evKey): text(f.evVal)}
	}
	for i := 0; i < int(f.nsteps%5); i++ {
		r.Path = append(r.Path, report.Step{Where: text(f.where), Netns: f.netns + uint32(i), NetnsName: text(f.location),
			Iface: text(f.iface), Src: text(f.src), Dst: text(f.dst), Sport: f.sport, Dport: f.dport, Detail: text(f.hint)})
	}
	if f.nsteps%2 == 1 {
		r.NAT = append(r.NAT, report.NAT{Hook: text(f.hook), NetnsName: text(f.iface), Before: text(f.src),
			After: text(f.dst), By: text(f.cause), Rule: text(f.expl)})
	}
	return r
}

func FuzzJSON(f *testing.F) {
	cases, err := recorded.LoadAll()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		r := c.Report()
		where, evKey, evVal := "", "", ""
		if len(r.Path) > 0 {
			where = r.Path[len(r.Path)-1].Where
		}
		for k, v := range r.Evidence {
			evKey, evVal = k, v
		}
		f.Add(r.Kind, r.Reason, r.Location, r.Iface, r.Src, r.Dst, r.Cause, r.Explanation, r.Hint, r.Hook, r.Table,
			where, evKey, evVal, r.Netns, r.Sport, r.Dport, r.ICMPType, r.Time.UnixNano(), uint8(len(r.Path)))
	}
	// Text that JSON must escape or replace, and extreme numbers.
	f.Add("drop", "a\nb", "\"q\"\\", "eth0\x00", "<&>", "\u2028\u2029", "\xff\xfe", "\t", "é🙂", "", "", "",
		"k\x7f", "\xc3", uint32(1<<32-1), uint16(65535), uint16(0), uint8(255), int64(-1<<63), uint8(255))
	f.Fuzz(func(t *testing.T, kind, reason, location, iface, src, dst, cause, expl, hint, hook, table, where, evKey,
		evVal string, netns uint32, sport, dport uint16, icmp uint8, nanos int64, nsteps uint8) {
		fields := fuzzFields{kind, reason, location, iface, src, dst, cause, expl, hint, hook, table, where, evKey, evVal,
			netns, sport, dport, icmp, nanos, nsteps}
		in := makeReport(fields, func(s string) string { return s })
		var buf bytes.Buffer
		w, err := output.New(&buf, "json")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := w.Write(in); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		out := buf.Bytes()
		if bytes.Count(out, []byte("\n")) != 2 || !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("two reports did not give two lines:\n%q", out)
		}
		line, second, _ := bytes.Cut(out, []byte("\n"))
		if !bytes.Equal(append(line, '\n'), second) {
			t.Fatalf("the same report written twice differs:\n%s\n%s", line, second)
		}
		if !json.Valid(line) {
			t.Fatalf("invalid JSON: %q", line)
		}
		var got report.Report
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("unmarshal %q: %v", line, err)
		}
		want := makeReport(fields, jsonText)
		if !got.Time.Equal(want.Time) {
			t.Fatalf("time %v came back as %v", want.Time, got.Time)
		}
		got.Time = want.Time
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("report changed through JSON:\n got %+v\nwant %+v\nline %s", got, *want, line)
		}
	})
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	if _, err := output.New(io.Discard, "yaml"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("New(yaml) error = %v; want one naming the valid formats", err)
	}
	for _, f := range append([]string{""}, output.Formats...) {
		if _, err := output.New(io.Discard, f); err != nil {
			t.Errorf("New(%q): %v", f, err)
		}
	}
}

func benchReport(b *testing.B) *report.Report {
	c, err := recorded.Load("forward-policy-drop")
	if err != nil {
		b.Fatal(err)
	}
	return c.Report()
}

func BenchmarkWriteJSON(b *testing.B) {
	r := benchReport(b)
	w, err := output.New(io.Discard, "json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}

func BenchmarkText(b *testing.B) {
	r := benchReport(b)
	w, err := output.New(io.Discard, "text")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
