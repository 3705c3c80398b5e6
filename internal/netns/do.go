package netns

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that is inside the namespace with the given
// inode. fn must not start goroutines that expect to share that namespace:
// only the calling thread is moved.
func (r *Resolver) Do(inode uint32, fn func() error) error {
	h, err := r.open(inode)
	if err != nil {
		return err
	}
	defer h.Close()
	return doIn(h, fn)
}

// DoPath is Do for a namespace given by an nsfs path such as
// /proc/1234/ns/net or /var/run/netns/blue.
func DoPath(path string, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer h.Close()
	return doIn(h, fn)
}

// open returns a handle for inode, checking that the opened file really is
// that namespace: a process path can be reused by an unrelated pid.
func (r *Resolver) open(inode uint32) (netns.NsHandle, error) {
	for attempt := 0; ; attempt++ {
		info, ok := r.Lookup(inode)
		if !ok {
			return netns.None(), fmt.Errorf("netns %d not found (no name under %s and no process in it)", inode, strings.Join(r.runDirs, " or "))
		}
		h, err := netns.GetFromPath(info.Path)
		if err == nil {
			var st unix.Stat_t
			if err = unix.Fstat(int(h), &st); err == nil && uint32(st.Ino) == inode {
				return h, nil
			}
			h.Close()
			if err == nil {
				err = fmt.Errorf("%s is now netns %d", info.Path, st.Ino)
			}
		}
		if attempt > 0 {
			return netns.None(), fmt.Errorf("open netns %d: %w", inode, err)
		}
		r.Refresh()
	}
}

// doIn uses a dedicated goroutine so that, if the original namespace cannot
// be restored, the thread is left locked and the goroutine exits: the Go
// runtime then terminates the thread instead of reusing it in the wrong
// namespace.
func doIn(target netns.NsHandle, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		pv       any
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() { done <- res }()

		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res.err = fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			res.err = fmt.Errorf("enter netns: %w", err)
			return
		}
		res.err, res.panicked, res.pv = call(fn)
		if err := netns.Set(orig); err != nil {
			res.err = errors.Join(res.err, fmt.Errorf("restore netns (thread discarded): %w", err))
			return // still locked on purpose
		}
		runtime.UnlockOSThread()
	}()
	res := <-done
	if res.panicked {
		panic(res.pv)
	}
	return res.err
}

// call runs fn and captures a panic so the namespace is restored before the
// panic continues in the caller's goroutine.
func call(fn func() error) (err error, panicked bool, pv any) {
	defer func() {
		if v := recover(); v != nil {
			panicked, pv = true, v
		}
	}()
	return fn(), false, nil
}
