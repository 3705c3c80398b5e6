package output

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/report"
)

// A failure here means the report types changed: update schema and the
// encoder in json.go together (until then pktdrop falls back to the slow
// encoding/json path, so output stays right).
func TestFastJSONSchema(t *testing.T) {
	if !fastJSON {
		t.Fatalf("report types no longer match json.go's encoder:\n got %q\nwant %q",
			schemaOf(report.Report{}, report.Step{}, report.NAT{}), schema)
	}
}

func stdJSON(t testing.TB, r *report.Report) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Strings that exercise every escaping rule.
var nasty = []string{"", "plain", `"quoted"`, `back\slash`, "ctl\x00\x01\x1f\x7f", "\b\f\n\r\t", "<html>&amp;",
	"é ü 日本", "\u2028\u2029", "bad\xffutf8\xc3", "\xe2\x80", "emoji 😀", strings.Repeat("x", 300)}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return nasty[rng.IntN(len(nasty))]
	}
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return string(b)
}

func randReport(rng *rand.Rand) *report.Report {
	s := func() string { return randString(rng) }
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	r := &report.Report{Time: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))]),
		Kind: s(), Reason: s(), Location: s(), Netns: rng.Uint32(), NetnsName: s(), Iface: s(), Ifindex: rng.Uint32(),
		Family: s(), Proto: s(), Src: s(), Dst: s(), Sport: uint16(rng.Uint32()), Dport: uint16(rng.Uint32()),
		ICMPType: uint8(rng.Uint32()), ICMPCode: uint8(rng.Uint32()), ICMPID: uint16(rng.Uint32()), ICMPSeq: uint16(rng.Uint32()),
		Len: rng.Uint32(), Mark: rng.Uint32(), Cause: s(), Explanation: s(), Hint: s(), Hook: s(), Table: s()}
	if rng.IntN(2) == 0 {
		r.TCPFlags, r.Chain, r.Rule, r.Verdict, r.RuleHandle, r.StepsLost = s(), s(), s(), s(), rng.Uint64(), rng.IntN(300)-10
		r.RuleIndex = rng.IntN(300) - 10
	}
	if rng.IntN(2) == 0 {
		r.Benign, r.BenignWhy = rng.IntN(4) != 0, s()
	}
	switch rng.IntN(3) {
	case 0:
	case 1:
		r.Evidence = map[string]string{}
	default:
		r.Evidence = map[string]string{}
		for range rng.IntN(5) {
			r.Evidence[s()] = s()
		}
	}
	if rng.IntN(4) != 0 {
		r.Path = []report.Step{}
		for range rng.IntN(5) {
			r.Path = append(r.Path, report.Step{Where: s(), Netns: rng.Uint32(), NetnsName: s(), Iface: s(), Src: s(),
				Dst: s(), Sport: uint16(rng.Uint32()), Dport: uint16(rng.Uint32()), Detail: s()})
		}
	}
	if rng.IntN(4) != 0 {
		r.NAT = []report.NAT{}
		for range rng.IntN(3) {
			r.NAT = append(r.NAT, report.NAT{Hook: s(), NetnsName: s(), Before: s(), After: s(), By: s(), Rule: s()})
		}
	}
	return r
}

func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		r := randReport(rng)
		got, ok := appendReport(nil, r)
		if !ok {
			t.Fatalf("report %d: fast encoder declined %v", i, r.Time)
		}
		if want := stdJSON(t, r); !bytes.Equal(got, want) {
			t.Fatalf("report %d differs:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestFastJSONDeclinesWhatMarshalRefuses(t *testing.T) {
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("lmt", 17*60+30))} {
		if _, ok := appendReport(nil, &report.Report{Time: tm}); ok {
			t.Errorf("encoded %v, which encoding/json refuses", tm)
		}
	}
}

func FuzzFastJSON(f *testing.F) {
	for _, s := range nasty {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, s string, nanos int64) {
		r := &report.Report{Time: time.Unix(0, nanos).UTC(), Kind: s, Evidence: map[string]string{s: s},
			Path: []report.Step{{Where: s, Detail: s}}, NAT: []report.NAT{{Rule: s}}}
		got, ok := appendReport(nil, r)
		if !ok {
			return
		}
		if want := stdJSON(t, r); !bytes.Equal(got, want) {
			t.Fatalf("differs:\n got %s\nwant %s", got, want)
		}
	})
}

func benchFastReport() *report.Report {
	return &report.Report{Time: time.Now(), Kind: "drop", Reason: "NETFILTER_DROP", Location: "nft_do_chain+0x637",
		Netns: 4026532594, NetnsName: "pdbench-a", Iface: "pdb1", Ifindex: 2, Family: "ipv4", Proto: "udp",
		Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999, Len: 60, Cause: "netfilter",
		Explanation: "dropped by netfilter in the INPUT hook (ipv4), table filter, on pdb1 in netns pdbench-b",
		Hint:        "list the INPUT rules of table filter (`nft list ruleset` or `iptables-save`) and allow this traffic",
		Hook:        "INPUT", Table: "filter", NAT: []report.NAT{},
		Path: []report.Step{{Where: "queue", Netns: 1, NetnsName: "pdbench-a", Iface: "pdb0", Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999},
			{Where: "xmit", Netns: 1, NetnsName: "pdbench-a", Iface: "pdb0", Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999},
			{Where: "receive", Netns: 2, NetnsName: "pdbench-b", Iface: "pdb1", Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999},
			{Where: "PREROUTING", Netns: 2, NetnsName: "pdbench-b", Iface: "pdb1", Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999, Detail: "accepted"},
			{Where: "route", Netns: 2, NetnsName: "pdbench-b", Iface: "pdb1", Src: "10.213.77.1", Dst: "10.213.77.2", Detail: "table local: via lo"},
			{Where: "INPUT", Netns: 2, NetnsName: "pdbench-b", Iface: "pdb1", Src: "10.213.77.1", Dst: "10.213.77.2", Sport: 40000, Dport: 9999, Detail: "reached table filter"}}}
}

// BenchmarkJSONEncoders compares the hand-written encoder with
// encoding/json on a typical storm report, in one run so that machine
// load affects both alike.
func BenchmarkJSONEncoders(b *testing.B) {
	r := benchFastReport()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendReport(buf[:0], r)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		enc := json.NewEncoder(io.Discard)
		enc.SetEscapeHTML(false)
		for b.Loop() {
			_ = enc.Encode(r)
		}
	})
}

// WriteRepeat must write exactly what Write writes for a report that
// differs from the one its tail came from only in time.
func TestWriteRepeatMatchesWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, format := range Formats {
		for i := 0; i < 2000; i++ {
			r := randReport(rng)
			if format == "text" {
				r.Time = r.Time.UTC()
			}
			var tail []byte
			var want, got bytes.Buffer
			wWant, _ := New(&want, format)
			wGot, _ := New(&got, format)
			for k := 0; k < 3; k++ {
				rk := *r
				rk.Time = r.Time.Add(time.Duration(k) * 1234567 * time.Nanosecond)
				if err := wWant.Write(&rk); err != nil {
					t.Fatal(err)
				}
				if err := wGot.WriteRepeat(&rk, &tail); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("%s report %d:\n got %q\nwant %q", format, i, got.Bytes(), want.Bytes())
			}
			if wGot.Summary().Drops+wGot.Summary().Traces+wGot.Summary().Benign != 3 {
				t.Fatalf("%s: summary counted %d reports, want 3", format, wGot.Summary().Drops+wGot.Summary().Traces+wGot.Summary().Benign)
			}
		}
	}
}
