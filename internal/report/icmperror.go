package report

import (
	"strings"

	"github.com/pktdrop/pktdrop/internal/event"
)

// markICMPErrors turns the route lookups the kernel makes for the ICMP
// error a drop triggers (ip_error, a TTL or MTU failure in ip_forward, an
// unreachable port) into one "icmp_error" step: they route a new packet
// back to the sender, not the dropped one. A lookup towards the packet's
// source is such a lookup unless it is the reverse-path check, which asks
// from the packet's destination before the packet went further.
// afterRouting: steps a received packet reaches only once its input
// route was decided.
var afterRouting = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true,
	"forward": true, "ip_output": true, "xmit": true, "queue": true}

func markICMPErrors(ev *event.Event, r *Report) {
	var pkt *Step // the packet as last seen before the step (a copy: out overwrites r.Path)
	failed, further := false, false
	out := r.Path[:0]
	icmp := false
	for i := range r.Path {
		s := r.Path[i]
		p := ev.Path[i].Point
		if p != event.PointFIBLookup {
			if pkt != nil && (s.Src != pkt.Src || s.Dst != pkt.Dst || s.Where == "receive") {
				failed, further = false, false // another packet (decapsulated, NATed, forwarded on)
			}
			further = further || afterRouting[s.Where]
			icmp = false
			out = append(out, s)
			seen := s
			pkt = &seen
			continue
		}
		if icmp && pkt != nil && s.Dst == pkt.Src {
			continue // the same error's next lookup (source address, the reverse relookup, table local)
		}
		if pkt == nil || s.Dst != pkt.Src || s.Dst == pkt.Dst ||
			(s.Src == pkt.Dst && !failed && !further) {
			failed = failed || (ev.Path[i].Ret != 0 && pkt != nil && s.Dst == pkt.Dst)
			icmp = false
			out = append(out, s)
			continue
		}
		icmp = true
		s.Where = "icmp_error"
		d := "ICMP error sent back to " + s.Dst
		if dev := strings.TrimPrefix(s.Detail[strings.Index(s.Detail, ":")+1:], " via "); strings.Contains(s.Detail, ": via ") {
			d += " via " + dev
		}
		if t, _, ok := strings.Cut(s.Detail, ":"); ok {
			d += " (" + t + ")"
		}
		s.Detail = d
		out = append(out, s)
	}
	r.Path = out
}
