package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/pods"
)

// ParseSpec resolves a --netns value to a namespace inode. It accepts an
// inode number, an nsfs path (/proc/PID/ns/net, /var/run/netns/NAME, a
// bind mount anywhere), a name under /var/run/netns, or "host".
func ParseSpec(s string) (uint32, error) {
	return parseSpec(RunDir, "/proc", s)
}

// ParseSpecAt is ParseSpec for the node under hostRoot: names are looked
// for in each of RunDirs, "host" is init's namespace there.
func ParseSpecAt(hostRoot string) func(string) (uint32, error) {
	return func(s string) (uint32, error) {
		dirs := RunDirs(hostRoot)
		for _, d := range dirs {
			if _, err := os.Lstat(filepath.Join(d, strings.TrimSpace(s))); err == nil && !strings.Contains(s, "/") {
				return parseSpec(d, pods.HostPath(hostRoot, "/proc"), s)
			}
		}
		return parseSpec(dirs[0], pods.HostPath(hostRoot, "/proc"), s)
	}
}

func parseSpec(runDir, procDir, s string) (uint32, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, errors.New("empty netns")
	case isDigits(s):
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("netns inode %s out of range", s)
		}
		return uint32(n), nil
	case strings.Contains(s, "/"):
		return pathInode(s)
	}
	p := filepath.Join(runDir, s)
	if _, err := os.Lstat(p); err == nil {
		return pathInode(p)
	}
	if s == "host" {
		return pathInode(filepath.Join(procDir, "1/ns/net"))
	}
	avail := "none"
	if names := namedIn(runDir); len(names) > 0 {
		avail = strings.Join(names, ", ")
	}
	return 0, fmt.Errorf("no netns named %q under %s (named: %s); give a name, an inode number or a /proc/PID/ns/net path", s, runDir, avail)
}

// pathInode opens path and checks it is a network namespace: a typo'd path
// to an ordinary file must not silently become a filter on its inode.
func pathInode(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open netns: %w", err)
	}
	defer f.Close()
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return 0, fmt.Errorf("%s is not a namespace file: %w", path, err)
	}
	if typ != unix.CLONE_NEWNET {
		return 0, fmt.Errorf("%s is not a network namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
