// Package probes reports which probe points the running kernel allows,
// by attaching them all once and detaching again.
package probes

import (
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"

	"github.com/pktdrop/pktdrop/internal/probe"
)

// Run attaches every probe (and netfilter links in the current netns),
// prints the table, and detaches.
func Run(w io.Writer, cfg probe.Config) error {
	set, err := probe.Load(cfg)
	if err != nil {
		return err
	}
	defer set.Close()
	if !set.Has("nf_hook_slow") {
		_ = set.AttachNetfilter([]string{"/proc/self/ns/net"})
	}
	return Write(w, set.Status)
}

// Write prints statuses as a table.
func Write(w io.Writer, st []probe.Status) error {
	t := tablewriter.NewWriter(w)
	t.Header("Probe point", "Mechanism", "Adds", "Not used")
	for _, s := range st {
		mech := string(s.Mechanism)
		if mech == "" {
			mech = "none"
		}
		if s.Via != "" {
			mech += " on " + s.Via
		}
		notUsed := strings.Join(s.Failures, "; ")
		if s.Skipped != "" {
			notUsed = s.Skipped
		}
		if err := t.Append(s.Point, mech, s.Why, notUsed); err != nil {
			return fmt.Errorf("render probes table: %w", err)
		}
	}
	return t.Render()
}
