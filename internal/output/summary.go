package output

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/olekukonko/tablewriter"

	"github.com/pktdrop/pktdrop/internal/report"
)

type key struct{ reason, location, iface, netns string }

// Summary counts drops by reason, location and device.
type Summary struct {
	counts map[key]int
	Drops  int
	Traces int
	Benign int // benign frees (internal/benign), counted apart from drops
}

// NewSummary returns an empty Summary.
func NewSummary() *Summary { return &Summary{counts: map[key]int{}} }

// Add counts one report.
func (s *Summary) Add(r *report.Report) {
	if r.Kind == "trace" {
		s.Traces++
		return
	}
	if r.Benign {
		s.Benign++
		return
	}
	s.Drops++
	reason := r.Reason
	if reason == "" {
		reason = r.Cause
	}
	s.counts[key{reason, r.Location, r.Iface, r.NetnsName}]++
}

// Lost is what was lost on the way to the output.
type Lost struct {
	Ringbuf uint64 // events the ring buffer had no room for
	Decode  uint64 // records that could not be decoded
}

// Write prints the table and the lost-event line.
func (s *Summary) Write(w io.Writer, lost Lost) error {
	keys := make([]key, 0, len(s.counts))
	for k := range s.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if s.counts[keys[i]] != s.counts[keys[j]] {
			return s.counts[keys[i]] > s.counts[keys[j]]
		}
		return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j])
	})
	fmt.Fprintf(w, "\n%d drops", s.Drops)
	if s.Traces > 0 {
		fmt.Fprintf(w, ", %d traced packets", s.Traces)
	}
	if s.Benign > 0 {
		fmt.Fprintf(w, ", %d benign frees (not drops)", s.Benign)
	}
	fmt.Fprintf(w, ", %d events lost (ring buffer full: %d, undecodable: %d)\n", lost.Ringbuf+lost.Decode, lost.Ringbuf, lost.Decode)
	if len(keys) == 0 {
		return nil
	}
	t := tablewriter.NewWriter(w)
	t.Header("Count", "Reason", "Location", "Device", "Netns")
	for _, k := range keys {
		if err := t.Append(strconv.Itoa(s.counts[k]), k.reason, k.location, k.iface, k.netns); err != nil {
			return err
		}
	}
	return t.Render()
}
