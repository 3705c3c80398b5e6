package netns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSysctlPath(t *testing.T) {
	good := map[string]string{
		"net/ipv4/conf/tunl0/rp_filter":     "/proc/sys/net/ipv4/conf/tunl0/rp_filter",
		"net.ipv4.ip_forward":               "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter":  "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"/proc/sys/net/ipv4/ip_default_ttl": "/proc/sys/net/ipv4/ip_default_ttl",
	}
	for in, want := range good {
		if got, err := sysctlPath(in); err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "net/../../etc/shadow", "net//ipv4", "../x"} {
		if got, err := sysctlPath(in); err == nil {
			t.Errorf("sysctlPath(%q) = %q; want error", in, got)
		}
	}
}

func TestParseSpecUnprivileged(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"red", "blue"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := parseSpec(dir, "/proc", "4026531840"); err != nil || got != 4026531840 {
		t.Errorf("inode: %d, %v", got, err)
	}
	self, err := Inode("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot stat own netns: %v", err)
	}
	if got, err := parseSpec(dir, "/proc", "/proc/self/ns/net"); err != nil || got != self {
		t.Errorf("own path: %d, %v; want %d", got, err, self)
	}
	errs := map[string]string{
		"green":                   `no netns named "green" under ` + dir + ` (named: blue, red); give a name, an inode number or a /proc/PID/ns/net path`,
		"0":                       "netns inode 0 out of range",
		"99999999999":             "netns inode 99999999999 out of range",
		"":                        "empty netns",
		"/proc/self/ns/uts":       "/proc/self/ns/uts is not a network namespace",
		filepath.Join(dir, "red"): filepath.Join(dir, "red") + " is not a namespace file: inappropriate ioctl for device",
		"/nonexistent/ns":         "open netns: open /nonexistent/ns: no such file or directory",
	}
	for in, want := range errs {
		_, err := parseSpec(dir, "/proc", in)
		if err == nil || err.Error() != want {
			t.Errorf("parseSpec(%q) error = %v; want %q", in, err, want)
		}
	}
	_, err = parseSpec(t.TempDir(), "/proc", "green")
	if err == nil || !strings.Contains(err.Error(), "(named: none)") {
		t.Errorf("empty run dir: %v", err)
	}
}

func TestResolverNamesOwnNetns(t *testing.T) {
	self, err := Inode("/proc/self/ns/net")
	if err != nil {
		t.Skipf("cannot stat own netns: %v", err)
	}
	r := newResolver(t.TempDir(), "/proc")
	r.Refresh()
	want := "self"
	if host, _ := r.hostNetns(); host == self {
		want = "host"
	}
	if got := r.Name(self); got != want {
		t.Errorf("Name(own) = %q; want %q", got, want)
	}
	if got := r.Name(0); got != "-" {
		t.Errorf("Name(0) = %q", got)
	}
}

// Where init's namespace cannot be read (pid 1 of a sandbox, or without
// CAP_SYS_PTRACE), kthreadd's names the host: kernel threads never leave it.
func TestHostNetnsFallsBackToKthreadd(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "1/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(proc, "2/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "2/comm"), []byte("kthreadd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[4026531999]", filepath.Join(proc, "2/ns/net")); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t.TempDir(), proc)
	r.Refresh()
	if got := r.Name(4026531999); got != "host" {
		t.Errorf("Name(kthreadd's netns) = %q; want host", got)
	}
}

func TestLookupMissRefreshRateLimited(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newResolver(t.TempDir(), t.TempDir())
	r.now = func() time.Time { return now }
	r.Refresh()
	first := r.lastRefresh

	now = now.Add(500 * time.Millisecond)
	if _, ok := r.Lookup(12345); ok {
		t.Fatal("found a bogus inode")
	}
	if r.lastRefresh != first {
		t.Error("miss within a second refreshed")
	}
	now = now.Add(600 * time.Millisecond)
	r.Lookup(12345)
	if !r.lastRefresh.Equal(now) {
		t.Error("miss after a second did not refresh")
	}
	if got := r.Name(12345); got != "netns:12345" {
		t.Errorf("Name(unknown) = %q", got)
	}
}

func TestLinkInode(t *testing.T) {
	want, err := Inode("/proc/self/ns/net")
	if err != nil {
		t.Skip(err)
	}
	got, err := linkInode("/proc/self/ns/net")
	if err != nil || got != want {
		t.Errorf("linkInode = %d, %v; want %d", got, err, want)
	}
	if _, err := linkInode("/proc/self/exe"); err == nil {
		t.Error("linkInode of a non-ns link succeeded")
	}
}

// Under --host-root, as in an image built from scratch: the node's
// /run/netns is read even where /var/run is no link to /run, and "host"
// is the node's init namespace.
func TestHostRootRunNetns(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/netns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run/netns/cni-1234"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/1/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[4026531777]", filepath.Join(root, "proc/1/ns/net")); err != nil {
		t.Fatal(err)
	}
	dirs := RunDirs(root)
	if len(dirs) != 2 || dirs[1] != filepath.Join(root, "run/netns") {
		t.Fatalf("RunDirs = %v", dirs)
	}
	r := NewResolverAt(Options{HostRoot: root})
	ino, err := Inode(filepath.Join(root, "run/netns/cni-1234"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Name(ino); got != "cni-1234" {
		t.Errorf("Name(cni-1234's inode) = %q", got)
	}
	if got := r.Name(4026531777); got != "host" {
		t.Errorf("Name(node init's netns) = %q; want host", got)
	}
}
