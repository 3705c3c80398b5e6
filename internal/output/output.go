// Package output writes reports as text or JSON Lines, and the summary
// table printed at the end.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pktdrop/pktdrop/internal/report"
)

// Formats lists the valid --output values.
var Formats = []string{"text", "json"}

// Writer writes reports in one format and counts them for the summary.
type Writer struct {
	w       io.Writer
	json    bool
	enc     *json.Encoder
	buf     []byte // reused for each JSON line
	summary *Summary
}

// New returns a Writer for format ("text" or "json").
func New(w io.Writer, format string) (*Writer, error) {
	o := &Writer{w: w, summary: NewSummary()}
	switch format {
	case "text", "":
	case "json":
		o.json = true
		o.enc = json.NewEncoder(w)
		o.enc.SetEscapeHTML(false)
	default:
		return nil, fmt.Errorf("invalid --output %q: want %s", format, strings.Join(Formats, " or "))
	}
	return o, nil
}

// Write writes one report.
func (o *Writer) Write(r *report.Report) error {
	o.summary.Add(r)
	if o.json {
		if fastJSON {
			var ok bool
			if o.buf, ok = appendReport(o.buf[:0], r); ok {
				_, err := o.w.Write(o.buf)
				return err
			}
		}
		return o.enc.Encode(r)
	}
	_, err := io.WriteString(o.w, Text(r))
	return err
}

// WriteRepeat writes r like Write, reusing *tail, the output of r after
// its time (filled here on first use): a storm of identical drops then
// costs a time stamp and a copy per report, not a full rendering. Every
// report written with the same tail must differ from the first at most in
// Time; the caller drops the tail when that no longer holds.
func (o *Writer) WriteRepeat(r *report.Report, tail *[]byte) error {
	if len(*tail) == 0 {
		if !o.json {
			*tail = append((*tail)[:0], textAfterTime(r)...)
		} else if fastJSON {
			var ok bool
			if o.buf, ok = appendReport(o.buf[:0], r); ok {
				*tail = append((*tail)[:0], o.buf[jsonTimeEnd(o.buf):]...)
			}
		}
		if len(*tail) == 0 {
			return o.Write(r) // no tail (encoding/json fallback): render in full
		}
	}
	o.summary.Add(r)
	if o.json {
		// Time.MarshalJSON's bounds, as in appendReport.
		if y := r.Time.Year(); y < 0 || y > 9999 {
			return o.enc.Encode(r)
		}
		if _, off := r.Time.Zone(); off%60 != 0 {
			return o.enc.Encode(r)
		}
		o.buf = append(o.buf[:0], `{"time":"`...)
		o.buf = r.Time.AppendFormat(o.buf, time.RFC3339Nano)
	} else {
		o.buf = r.Time.AppendFormat(o.buf[:0], textTime)
	}
	o.buf = append(o.buf, *tail...)
	_, err := o.w.Write(o.buf)
	return err
}

// jsonTimeEnd is the offset of the quote that closes the time value in a
// line from appendReport.
func jsonTimeEnd(line []byte) int {
	const prefix = len(`{"time":"`)
	return prefix + bytes.IndexByte(line[prefix:], '"')
}

// textAfterTime is Text(r) without its leading time stamp.
func textAfterTime(r *report.Report) string {
	t := Text(r)
	return t[len(r.Time.Format(textTime)):]
}

// Summary returns the counts so far.
func (o *Writer) Summary() *Summary { return o.summary }

// textTime is how the text output stamps a report.
const textTime = "15:04:05.000000"

// Text renders one report as a block of lines.
func Text(r *report.Report) string {
	var b strings.Builder
	verb := "DROP"
	switch {
	case r.Kind == "trace":
		verb = "TRACE"
	case r.Benign:
		verb = "BENIGN" // freed after it arrived: not a drop
	}
	fmt.Fprintf(&b, "%s %s %s\n", r.Time.Format(textTime), verb, Packet(r))
	at := []string{}
	if r.Owned() {
		at = append(at, r.NetnsName) // "pod shop/web", "container web"
	} else if r.NetnsName != "" {
		at = append(at, "netns "+r.NetnsName)
	}
	if r.Iface != "" {
		at = append(at, "dev "+r.Iface)
	}
	if r.Hook != "" {
		h := "hook " + r.Hook
		if r.Table != "" {
			h += " table " + r.Table
		}
		at = append(at, h)
	}
	if r.Location != "" {
		at = append(at, r.Location)
	}
	line(&b, "at", strings.Join(at, ", "))
	line(&b, "reason", r.Reason)
	if r.Chain != "" {
		rule := r.Rule
		if r.Verdict == "policy" {
			rule = "policy of chain " + r.Chain
		}
		// The drop probes name table and chain without the rule (that
		// takes --rules): then there is nothing to put after a colon.
		s := fmt.Sprintf("table %s chain %s", r.Table, r.Chain)
		if r.RuleIndex != 0 {
			s += fmt.Sprintf(" rule %d", r.RuleIndex)
		}
		if rule != "" {
			s += ": " + rule
		}
		line(&b, "rule", s)
	}
	if r.Cause != "" {
		line(&b, "cause", r.Cause+": "+r.Explanation)
	}
	line(&b, "fix", r.Hint)
	if p := Path(r); p != "" {
		line(&b, "path", p)
	}
	for _, n := range r.NAT {
		by := n.By
		if n.Rule != "" {
			by += " " + n.Rule
		}
		line(&b, "nat", fmt.Sprintf("%s in %s: %s → %s (%s)", n.Hook, n.NetnsName, n.Before, n.After, by))
	}
	return b.String()
}

func line(b *strings.Builder, label, s string) {
	if s != "" {
		fmt.Fprintf(b, "  %-7s%s\n", label, s)
	}
}

// Packet renders the packet as "icmp 10.0.0.1 > 10.0.0.2 echo-request id 7 seq 1".
func Packet(r *report.Report) string {
	if r.Family == "" {
		return fmt.Sprintf("non-IP packet, %d bytes", r.Len)
	}
	s := fmt.Sprintf("%s %s > %s", r.Proto, report.Tuple(r.Src, r.Sport), report.Tuple(r.Dst, r.Dport))
	switch r.Proto {
	case "icmp", "icmp6":
		s += " " + ICMPName(r.Proto, r.ICMPType, r.ICMPCode)
		if mtu, ok := report.ICMPMTU(r); ok {
			s += fmt.Sprintf(" mtu %d", mtu) // where echo has id and seq, these carry the next-hop MTU
		} else if r.ICMPID != 0 || r.ICMPSeq != 0 {
			s += fmt.Sprintf(" id %d seq %d", r.ICMPID, r.ICMPSeq)
		}
	case "tcp":
		if r.TCPFlags != "" {
			s += " [" + r.TCPFlags + "]"
		}
	}
	return s + fmt.Sprintf(" len %d", r.Len)
}

// Path renders the path on one line: "router: eth0 receive → PREROUTING → ...".
func Path(r *report.Report) string {
	var parts []string
	ns := ""
	for _, s := range r.Path {
		p := ""
		if s.NetnsName != ns && s.NetnsName != "" {
			p = "[" + s.NetnsName + "] "
			ns = s.NetnsName
		}
		if s.Where == "icmp_error" {
			parts = append(parts, p+s.Detail) // a new packet: where and device are not the dropped one's
			continue
		}
		p += s.Where
		if s.Iface != "" && s.Where != "route" {
			p += "@" + s.Iface
		}
		if s.Detail != "" {
			p += " (" + s.Detail + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	if r.StepsLost > 0 {
		parts = append([]string{fmt.Sprintf("…%d earlier steps", r.StepsLost)}, parts...)
	}
	end := " → ✗ dropped"
	if r.Kind == "trace" {
		end = " → delivered"
	} else if r.Benign {
		end = " → freed (benign)"
	}
	return strings.Join(parts, " → ") + end
}

var icmp4 = map[uint8]string{0: "echo-reply", 3: "dest-unreachable", 5: "redirect", 8: "echo-request", 11: "time-exceeded", 12: "parameter-problem"}
var icmp6 = map[uint8]string{1: "dest-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem",
	128: "echo-request", 129: "echo-reply", 133: "router-solicit", 134: "router-advert", 135: "neighbor-solicit", 136: "neighbor-advert"}

// ICMPName names an ICMP or ICMPv6 type.
func ICMPName(proto string, typ, code uint8) string {
	m := icmp4
	if proto == "icmp6" {
		m = icmp6
	}
	if n, ok := m[typ]; ok {
		if proto == "icmp" && typ == 3 && code == 4 {
			return n + " frag-needed"
		}
		if code != 0 {
			return fmt.Sprintf("%s code %d", n, code)
		}
		return n
	}
	return fmt.Sprintf("type %d code %d", typ, code)
}
