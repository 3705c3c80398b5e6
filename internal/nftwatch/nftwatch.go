// Package nftwatch hears, in each network namespace it is given, of
// nf_tables tables and base chains that come and go (the NFNLGRP_NFTABLES
// multicast group of a netlink socket opened in that namespace), so that
// whoever planned something by the chains a namespace had can plan again
// before its first packet meets a new chain. iptables-nft changes
// nf_tables and is heard; iptables-legacy sends nothing.
package nftwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Settle is how long after the first change of a burst the namespace is
// reported: one nft or iptables-restore transaction sends a message per
// object, and a ruleset reload (kube-proxy) hundreds. A namespace is
// reported at most once per Settle.
var Settle = 20 * time.Millisecond

// Watcher watches namespaces by inode.
type Watcher struct {
	changed func(path string)

	mu     sync.Mutex
	ns     map[uint64]*nsWatch
	failed map[uint64]bool // not tried again while kept
	closed bool
}

type nsWatch struct {
	path string
	conn *netlink.Conn

	mu      sync.Mutex
	pending bool
	stopped bool
}

// New returns a watcher that calls changed with a namespace's path when
// its tables or base chains changed. changed runs on a goroutine of its
// own per namespace and may block.
func New(changed func(path string)) *Watcher {
	return &Watcher{changed: changed, ns: map[uint64]*nsWatch{}, failed: map[uint64]bool{}}
}

// Add watches the namespaces at paths not watched yet. Namespaces that
// cannot be watched are reported together; the others are watched.
func (w *Watcher) Add(paths []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, p := range paths {
		var st unix.Stat_t
		if w.closed || unix.Stat(p, &st) != nil || w.ns[st.Ino] != nil || w.failed[st.Ino] {
			continue
		}
		n, ino, err := open(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				w.failed[st.Ino] = true
				errs = append(errs, err)
			}
			continue
		}
		w.ns[ino] = n
		go n.read(w.changed)
	}
	return errors.Join(errs...)
}

// open subscribes in the namespace at path; ino is the namespace the
// socket was opened in (the path may have been replaced since the stat).
func open(path string) (*nsWatch, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("watch nf_tables in %s: %w", path, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, 0, fmt.Errorf("watch nf_tables in %s: %w", path, err)
	}
	// A name whose namespace was just deleted (unmounted) is a plain file.
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		return nil, 0, fmt.Errorf("watch nf_tables in %s: %w", path, os.ErrNotExist)
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		return nil, 0, fmt.Errorf("watch nf_tables in %s: %w", path, err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("watch nf_tables in %s: join group: %w", path, err)
	}
	return &nsWatch{path: path, conn: c}, st.Ino, nil
}

// Keep stops watching namespaces not in keep: a netlink socket keeps its
// namespace alive.
func (w *Watcher) Keep(keep map[uint64]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ino, n := range w.ns {
		if !keep[ino] {
			n.stop()
			delete(w.ns, ino)
		}
	}
	for ino := range w.failed {
		if !keep[ino] {
			delete(w.failed, ino)
		}
	}
}

// Watching tells how many namespaces are watched.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ns)
}

// Close stops all watches.
func (w *Watcher) Close() {
	w.Keep(nil)
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (n *nsWatch) stop() {
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	_ = n.conn.Close() // wakes read
}

func (n *nsWatch) read(changed func(string)) {
	for {
		msgs, err := n.conn.Receive()
		if err != nil {
			n.mu.Lock()
			stopped := n.stopped
			n.mu.Unlock()
			if stopped {
				return
			}
			// ENOBUFS: messages were lost, some may have been changes.
			// Any other error ends the watch (a drop lacking its hook
			// still asks for a replan).
			n.schedule(changed)
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return
		}
		for _, m := range msgs {
			if relevant(m) {
				n.schedule(changed)
				break
			}
		}
	}
}

// schedule reports the namespace Settle from now, unless a report is
// pending already.
func (n *nsWatch) schedule(changed func(string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending || n.stopped {
		return
	}
	n.pending = true
	time.AfterFunc(Settle, func() {
		n.mu.Lock()
		n.pending = false
		stopped := n.stopped
		n.mu.Unlock()
		if !stopped {
			changed(n.path)
		}
	})
}

// relevant tells whether m adds or removes a table or a base chain (a
// chain with a hook). Regular chains run only when jumped to and do not
// change where a packet can stop.
func relevant(m netlink.Message) bool {
	t := uint16(m.Header.Type)
	if t>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return false
	}
	switch t & 0xff {
	case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE:
		return true
	case unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELCHAIN:
		return hasHook(m.Data)
	}
	return false
}

// hasHook tells whether a chain message (nfgenmsg, then attributes)
// carries NFTA_CHAIN_HOOK.
func hasHook(b []byte) bool {
	const nfgenmsgLen = 4
	if len(b) < nfgenmsgLen {
		return false
	}
	ad, err := netlink.NewAttributeDecoder(b[nfgenmsgLen:])
	if err != nil {
		return true // cannot tell: replanning is harmless
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_CHAIN_HOOK {
			return true
		}
	}
	return ad.Err() != nil
}
