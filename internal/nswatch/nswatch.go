// Package nswatch tells when network namespaces appear or go: inotify on
// the directories namespaces are bind-mounted in (`ip netns`, CNI plugins),
// and a bounded rescan when an event names a namespace nobody knows (one
// made with unshare, or in a directory not watched).
package nswatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A namespace file is created empty and the namespace is bind-mounted on
// it a moment later, which inotify does not report: a change is therefore
// followed by checks at these delays after it.
var settle = []time.Duration{5 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second}

// mountWindow is how long after a file appeared a mount counts as its
// namespace arriving.
const mountWindow = 2 * time.Second

// MinUnknown bounds how often an unknown inode may trigger a rescan.
const MinUnknown = time.Second

// Poll is the rescan interval that catches what no event reported
// (namespaces held only by processes).
const Poll = 5 * time.Second

// Watcher calls Sync after namespace changes, one call at a time.
type Watcher struct {
	dirs []string
	sync func()
	fd   int

	kick chan struct{}

	mu          sync.Mutex
	lastUnknown time.Time
	watched     map[int]string  // inotify watch descriptor → dir
	direct      map[string]bool // dirs watched themselves (not their parent)
	removed     map[int]bool    // parent watches removed by us
}

// Start watches dirs (which need not exist yet: their parent is watched
// until they do) and calls sync after each change, and every Poll.
func Start(ctx context.Context, dirs []string, sync func()) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch network namespaces: inotify: %w", err)
	}
	w := &Watcher{dirs: dirs, sync: sync, fd: fd, kick: make(chan struct{}, 1),
		watched: map[int]string{}, direct: map[string]bool{}, removed: map[int]bool{}}
	w.addWatches()
	go w.read(ctx)
	go w.loop(ctx)
	return w, nil
}

// addWatches watches each dir not watched yet, or its parent while the
// dir does not exist; a parent watch no longer needed is removed (its
// IN_IGNORED is then expected, not a sign of a dir gone).
func (w *Watcher) addWatches() {
	w.mu.Lock()
	defer w.mu.Unlock()
	needParent := map[string]bool{}
	for _, d := range w.dirs {
		if w.direct[d] {
			continue
		}
		wd, err := unix.InotifyAddWatch(w.fd, d, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE_SELF)
		if err == nil {
			w.watched[wd] = d
			w.direct[d] = true
			continue
		}
		needParent[filepath.Dir(d)] = true
	}
	for wd, p := range w.watched {
		if !w.direct[p] && !needParent[p] {
			w.removed[wd] = true
			delete(w.watched, wd)
			_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	for p := range needParent {
		if wd, err := unix.InotifyAddWatch(w.fd, p, unix.IN_CREATE|unix.IN_MOVED_TO); err == nil {
			w.watched[wd] = p
		}
	}
}

// gone handles a watch the kernel dropped: its dir was removed, so its
// parent is watched again until it comes back.
func (w *Watcher) gone(wd int) {
	w.mu.Lock()
	if w.removed[wd] {
		delete(w.removed, wd)
		w.mu.Unlock()
		return
	}
	if d, ok := w.watched[wd]; ok {
		delete(w.watched, wd)
		delete(w.direct, d)
	}
	w.mu.Unlock()
	w.addWatches()
}

// Unknown says an event came from namespace inode nobody could name: a
// rescan, at most once per MinUnknown.
func (w *Watcher) Unknown(inode uint32) {
	w.mu.Lock()
	if time.Since(w.lastUnknown) < MinUnknown {
		w.mu.Unlock()
		return
	}
	w.lastUnknown = time.Now()
	w.mu.Unlock()
	w.Kick()
}

// Kick asks for a sync soon.
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) read(ctx context.Context) {
	defer unix.Close(w.fd)
	buf := make([]byte, 64<<10)
	pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	// The mount table changes when a namespace is bind-mounted on its
	// file: poll says so (POLLPRI) for /proc/self/mountinfo. Mounts are
	// frequent on a node, so this only counts shortly after a file was
	// created.
	mounts, err := os.Open("/proc/self/mountinfo")
	if err == nil {
		defer mounts.Close()
		_, _ = io.Copy(io.Discard, mounts)
		pfd = append(pfd, unix.PollFd{Fd: int32(mounts.Fd()), Events: unix.POLLPRI})
	}
	var created time.Time
	for ctx.Err() == nil {
		n, err := unix.Poll(pfd, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n <= 0 {
			continue
		}
		if len(pfd) > 1 && pfd[1].Revents != 0 {
			_, _ = mounts.Seek(0, io.SeekStart)
			_, _ = io.Copy(io.Discard, mounts)
			if time.Since(created) < mountWindow {
				w.Kick()
			}
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			continue
		}
		created = time.Now()
		n, err = unix.Read(w.fd, buf)
		if err != nil || n <= 0 {
			continue
		}
		kick := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			switch {
			case ev.Mask&unix.IN_IGNORED != 0:
				w.gone(int(ev.Wd))
			case ev.Mask&unix.IN_ISDIR != 0:
				w.addWatches() // a watched dir's parent got it
				kick = true
			default:
				kick = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if kick {
			w.Kick()
		}
	}
}

// loop calls sync after each kick, again at the settle delays, and every
// Poll.
func (w *Watcher) loop(ctx context.Context) {
	poll := time.NewTicker(Poll)
	defer poll.Stop()
	var settleAt []time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var next <-chan time.Time
		if len(settleAt) > 0 {
			timer.Reset(time.Until(settleAt[0]))
			next = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			// A stream of kicks must not postpone the first sync: the
			// pending sequence keeps its times, the new one is merged in.
			now := time.Now()
			for _, d := range settle {
				settleAt = append(settleAt, now.Add(d))
			}
			slices.SortFunc(settleAt, func(a, b time.Time) int { return a.Compare(b) })
			settleAt = slices.CompactFunc(settleAt, func(a, b time.Time) bool { return b.Sub(a) < settle[0] })
			continue
		case <-next:
			settleAt = settleAt[1:]
		case <-poll.C:
		}
		w.sync()
	}
}
