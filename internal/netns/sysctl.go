package netns

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Sysctl reads a sysctl such as "net/ipv4/conf/tunl0/rp_filter" (or the
// dotted form when no component contains a dot) as seen inside netns inode.
// /proc/sys/net is resolved against the netns of the thread that opens the
// file, so the open happens inside Do.
func (r *Resolver) Sysctl(inode uint32, key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var val string
	err = r.Do(inode, func() error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		val = strings.TrimRight(string(b), "\n")
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read sysctl %s in netns %d: %w", key, inode, err)
	}
	return val, nil
}

func sysctlPath(key string) (string, error) {
	k := strings.TrimPrefix(key, "/proc/sys/")
	if !strings.Contains(k, "/") {
		k = strings.ReplaceAll(k, ".", "/")
	}
	clean := path.Clean("/" + k)
	if k == "" || clean != "/"+strings.TrimSuffix(k, "/") {
		return "", fmt.Errorf("invalid sysctl name %q", key)
	}
	return "/proc/sys" + clean, nil
}
