package netns

import (
	"fmt"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
)

// devTTL bounds how long an ifindex -> name answer is trusted: devices in
// container namespaces come and go, and ifindexes get reused.
const devTTL = 5 * time.Second

type devKey struct {
	inode   uint32
	ifindex uint32
}

type devEntry struct {
	name    string
	expires time.Time
}

// DeviceName names interface ifindex in netns inode for display. Answers,
// including failures, are cached briefly so a burst of drops costs one
// netlink query. An unknown device is shown as "if<N>".
func (r *Resolver) DeviceName(inode, ifindex uint32) string {
	if ifindex == 0 {
		return ""
	}
	k := devKey{inode, ifindex}
	now := r.now()
	r.devMu.Lock()
	e, ok := r.devs[k]
	r.devMu.Unlock()
	if ok && now.Before(e.expires) {
		return e.name
	}
	name, err := r.LookupDevice(inode, ifindex)
	if err != nil {
		name = "if" + strconv.FormatUint(uint64(ifindex), 10)
	}
	r.devMu.Lock()
	if len(r.devs) > 4096 {
		clear(r.devs) // bounded: namespaces churn in busy clusters
	}
	r.devs[k] = devEntry{name, now.Add(devTTL)}
	r.devMu.Unlock()
	return name
}

// LookupDevice asks the namespace's netlink for the name of ifindex,
// uncached.
func (r *Resolver) LookupDevice(inode, ifindex uint32) (string, error) {
	var name string
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		l, err := h.LinkByIndex(int(ifindex))
		if err != nil {
			return fmt.Errorf("link %d: %w", ifindex, err)
		}
		name = l.Attrs().Name
		return nil
	})
	return name, err
}

// withHandle gives fn a netlink socket bound to the namespace; the socket
// keeps that namespace for its lifetime, so no thread switching is needed
// while fn runs.
func (r *Resolver) withHandle(inode uint32, fn func(*netlink.Handle) error) error {
	ns, err := r.open(inode)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %d: %w", inode, err)
	}
	defer h.Close()
	return fn(h)
}
