package output

import (
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pktdrop/pktdrop/internal/report"
)

// A hand-written encoder for reports: encoding/json spends most of its
// time in reflection and allocation, and in a drop storm pktdrop writes
// hundreds of thousands of reports a second. The output is byte for byte
// what json.Encoder with SetEscapeHTML(false) writes (TestFastJSON* check
// it); should the report types change without this file following,
// fastJSON is off and encoding/json is used instead.

// fastJSON says whether the report types still have the fields this
// encoder was written for.
var fastJSON = schemaMatches()

// schema is every field of report.Report, report.Step and report.NAT as
// "Type.Field json-tag kind", in order.
var schema = []string{
	"Report.Time time time.Time", "Report.Kind kind string", "Report.Reason reason string",
	"Report.Location location string", "Report.Netns netns uint32", "Report.NetnsName netns_name string",
	"Report.Pod pod,omitempty string", "Report.PodNS pod_namespace,omitempty string",
	"Report.PodUID pod_uid,omitempty string", "Report.Iface iface string", "Report.Ifindex ifindex uint32", "Report.Family family string",
	"Report.Proto proto string", "Report.Src src string", "Report.Dst dst string", "Report.Sport sport uint16",
	"Report.Dport dport uint16", "Report.ICMPType icmp_type uint8", "Report.ICMPCode icmp_code uint8",
	"Report.ICMPID icmp_id uint16", "Report.ICMPSeq icmp_seq uint16", "Report.TCPFlags tcp_flags,omitempty string",
	"Report.Len len uint32", "Report.Mark mark uint32", "Report.TTL - uint8",
	"Report.Benign benign,omitempty bool", "Report.BenignWhy benign_why,omitempty string", "Report.Cause cause string",
	"Report.Explanation explanation string", "Report.Hint hint string",
	"Report.Evidence evidence,omitempty map[string]string", "Report.Hook hook string", "Report.Table table string",
	"Report.Chain chain,omitempty string", "Report.Rule rule,omitempty string",
	"Report.RuleHandle rule_handle,omitempty uint64", "Report.RuleIndex rule_index,omitempty int",
	"Report.Verdict verdict,omitempty string",
	"Report.Path path []report.Step", "Report.StepsLost steps_lost,omitempty int", "Report.NAT nat []report.NAT",
	"Step.Where where string", "Step.Netns netns uint32", "Step.NetnsName netns_name string",
	"Step.Pod pod,omitempty string", "Step.PodNS pod_namespace,omitempty string", "Step.PodUID pod_uid,omitempty string",
	"Step.Iface iface string", "Step.Src src string", "Step.Dst dst string", "Step.Sport sport uint16",
	"Step.Dport dport uint16", "Step.Detail detail string",
	"NAT.Hook hook string", "NAT.NetnsName netns_name string", "NAT.Before before string",
	"NAT.After after string", "NAT.By by string", "NAT.Rule rule,omitempty string",
}

func schemaOf(types ...any) []string {
	var out []string
	for _, v := range types {
		t := reflect.TypeOf(v)
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			out = append(out, t.Name()+"."+f.Name+" "+f.Tag.Get("json")+" "+f.Type.String())
		}
	}
	return out
}

func schemaMatches() bool {
	return slices.Equal(schemaOf(report.Report{}, report.Step{}, report.NAT{}), schema)
}

// appendReport appends r as one JSON line. ok is false where the encoder
// would differ from encoding/json (a time it refuses to encode), and then
// b is unchanged.
func appendReport(b []byte, r *report.Report) (_ []byte, ok bool) {
	// Time.MarshalJSON refuses these years and zone offsets with seconds.
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := r.Time.Zone(); off%60 != 0 {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendJSONString(b, r.Kind)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, r.Reason)
	b = append(b, `,"location":`...)
	b = appendJSONString(b, r.Location)
	b = append(b, `,"netns":`...)
	b = strconv.AppendUint(b, uint64(r.Netns), 10)
	b = append(b, `,"netns_name":`...)
	b = appendJSONString(b, r.NetnsName)
	b = appendPod(b, r.Pod, r.PodNS, r.PodUID)
	b = append(b, `,"iface":`...)
	b = appendJSONString(b, r.Iface)
	b = append(b, `,"ifindex":`...)
	b = strconv.AppendUint(b, uint64(r.Ifindex), 10)
	b = append(b, `,"family":`...)
	b = appendJSONString(b, r.Family)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `,"src":`...)
	b = appendJSONString(b, r.Src)
	b = append(b, `,"dst":`...)
	b = appendJSONString(b, r.Dst)
	b = append(b, `,"sport":`...)
	b = strconv.AppendUint(b, uint64(r.Sport), 10)
	b = append(b, `,"dport":`...)
	b = strconv.AppendUint(b, uint64(r.Dport), 10)
	b = append(b, `,"icmp_type":`...)
	b = strconv.AppendUint(b, uint64(r.ICMPType), 10)
	b = append(b, `,"icmp_code":`...)
	b = strconv.AppendUint(b, uint64(r.ICMPCode), 10)
	b = append(b, `,"icmp_id":`...)
	b = strconv.AppendUint(b, uint64(r.ICMPID), 10)
	b = append(b, `,"icmp_seq":`...)
	b = strconv.AppendUint(b, uint64(r.ICMPSeq), 10)
	if r.TCPFlags != "" {
		b = append(b, `,"tcp_flags":`...)
		b = appendJSONString(b, r.TCPFlags)
	}
	b = append(b, `,"len":`...)
	b = strconv.AppendUint(b, uint64(r.Len), 10)
	b = append(b, `,"mark":`...)
	b = strconv.AppendUint(b, uint64(r.Mark), 10)
	if r.Benign {
		b = append(b, `,"benign":true`...)
	}
	if r.BenignWhy != "" {
		b = append(b, `,"benign_why":`...)
		b = appendJSONString(b, r.BenignWhy)
	}
	b = append(b, `,"cause":`...)
	b = appendJSONString(b, r.Cause)
	b = append(b, `,"explanation":`...)
	b = appendJSONString(b, r.Explanation)
	b = append(b, `,"hint":`...)
	b = appendJSONString(b, r.Hint)
	if len(r.Evidence) > 0 {
		b = append(b, `,"evidence":{`...)
		keys := make([]string, 0, len(r.Evidence))
		for k := range r.Evidence {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, r.Evidence[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"hook":`...)
	b = appendJSONString(b, r.Hook)
	b = append(b, `,"table":`...)
	b = appendJSONString(b, r.Table)
	if r.Chain != "" {
		b = append(b, `,"chain":`...)
		b = appendJSONString(b, r.Chain)
	}
	if r.Rule != "" {
		b = append(b, `,"rule":`...)
		b = appendJSONString(b, r.Rule)
	}
	if r.RuleHandle != 0 {
		b = append(b, `,"rule_handle":`...)
		b = strconv.AppendUint(b, r.RuleHandle, 10)
	}
	if r.RuleIndex != 0 {
		b = append(b, `,"rule_index":`...)
		b = strconv.AppendInt(b, int64(r.RuleIndex), 10)
	}
	if r.Verdict != "" {
		b = append(b, `,"verdict":`...)
		b = appendJSONString(b, r.Verdict)
	}
	b = append(b, `,"path":`...)
	if r.Path == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Path {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStep(b, &r.Path[i])
		}
		b = append(b, ']')
	}
	if r.StepsLost != 0 {
		b = append(b, `,"steps_lost":`...)
		b = strconv.AppendInt(b, int64(r.StepsLost), 10)
	}
	b = append(b, `,"nat":`...)
	if r.NAT == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.NAT {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNAT(b, &r.NAT[i])
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), true
}

func appendStep(b []byte, s *report.Step) []byte {
	b = append(b, `{"where":`...)
	b = appendJSONString(b, s.Where)
	b = append(b, `,"netns":`...)
	b = strconv.AppendUint(b, uint64(s.Netns), 10)
	b = append(b, `,"netns_name":`...)
	b = appendJSONString(b, s.NetnsName)
	b = appendPod(b, s.Pod, s.PodNS, s.PodUID)
	b = append(b, `,"iface":`...)
	b = appendJSONString(b, s.Iface)
	b = append(b, `,"src":`...)
	b = appendJSONString(b, s.Src)
	b = append(b, `,"dst":`...)
	b = appendJSONString(b, s.Dst)
	b = append(b, `,"sport":`...)
	b = strconv.AppendUint(b, uint64(s.Sport), 10)
	b = append(b, `,"dport":`...)
	b = strconv.AppendUint(b, uint64(s.Dport), 10)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, s.Detail)
	return append(b, '}')
}

func appendPod(b []byte, pod, ns, uid string) []byte {
	if pod != "" {
		b = append(b, `,"pod":`...)
		b = appendJSONString(b, pod)
	}
	if ns != "" {
		b = append(b, `,"pod_namespace":`...)
		b = appendJSONString(b, ns)
	}
	if uid != "" {
		b = append(b, `,"pod_uid":`...)
		b = appendJSONString(b, uid)
	}
	return b
}

func appendNAT(b []byte, n *report.NAT) []byte {
	b = append(b, `{"hook":`...)
	b = appendJSONString(b, n.Hook)
	b = append(b, `,"netns_name":`...)
	b = appendJSONString(b, n.NetnsName)
	b = append(b, `,"before":`...)
	b = appendJSONString(b, n.Before)
	b = append(b, `,"after":`...)
	b = appendJSONString(b, n.After)
	b = append(b, `,"by":`...)
	b = appendJSONString(b, n.By)
	if n.Rule != "" {
		b = append(b, `,"rule":`...)
		b = appendJSONString(b, n.Rule)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s the way encoding/json does without HTML
// escaping: \" \\ \b \f \n \r \t, other control bytes as \u00XX, invalid
// UTF-8 as \ufffd, and U+2028/U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
