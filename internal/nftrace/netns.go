package nftrace

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// nsHandle is an open network namespace. The fd stays open for the
// tracer's lifetime so the inode cannot be reused under us.
type nsHandle struct {
	path    string
	inode   uint32
	fd      int
	current bool
	file    *os.File
}

func openNetns(path string) (*nsHandle, error) {
	current := path == ""
	if current {
		path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat netns %s: %w", path, err)
	}
	if current {
		// Record a path that still names this netns from other processes.
		path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	return &nsHandle{path: path, inode: uint32(st.Ino), fd: int(f.Fd()), current: current, file: f}, nil
}

func (ns *nsHandle) close() error { return ns.file.Close() }
