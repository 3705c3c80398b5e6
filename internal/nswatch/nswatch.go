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
	watched     map[int]string // inotify watch descriptor → dir
}

// Start watches dirs (which need not exist yet: their parent is watched
// until they do) and calls sync after each change, and every Poll.
func Start(ctx context.Context, dirs []string, sync func()) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch network namespaces: inotify: %w", err)
	}
	w := &Watcher{dirs: dirs, sync: sync, fd: fd, kick: make(chan struct{}, 1), watched: map[int]string{}}
	w.addWatches()
	go w.read(ctx)
	go w.loop(ctx)
	return w, nil
}

// addWatches watches each dir, or its parent while it does not exist.
func (w *Watcher) addWatches() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.dirs {
		wd, err := unix.InotifyAddWatch(w.fd, d, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE_SELF)
		if err == nil {
			w.watched[wd] = d
			continue
		}
		if wd, err := unix.InotifyAddWatch(w.fd, filepath.Dir(d), unix.IN_CREATE|unix.IN_MOVED_TO); err == nil {
			w.watched[wd] = filepath.Dir(d)
		}
	}
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
		rewatch := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
				w.mu.Lock()
				delete(w.watched, int(ev.Wd))
				w.mu.Unlock()
				rewatch = true
			}
			if ev.Mask&unix.IN_ISDIR != 0 {
				rewatch = true // a watched dir's parent got it
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if rewatch {
			w.rewatch()
		}
		w.Kick()
	}
}

// rewatch drops the parent watches of dirs that now exist and re-adds all.
func (w *Watcher) rewatch() {
	w.mu.Lock()
	for wd := range w.watched {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
	}
	clear(w.watched)
	w.mu.Unlock()
	w.addWatches()
}

// loop calls sync after each kick, again at the settle delays, and every
// Poll; kicks meanwhile restart the settle sequence.
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
			now := time.Now()
			settleAt = settleAt[:0]
			for _, d := range settle {
				settleAt = append(settleAt, now.Add(d))
			}
			continue
		case <-next:
			settleAt = settleAt[1:]
		case <-poll.C:
		}
		w.sync()
	}
}
