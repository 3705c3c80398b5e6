package netns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

type testNS struct {
	name    string
	inode   uint32
	ifindex uint32 // of pdv0
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newTestNS builds a named netns with a veth pair, an address, a gateway
// route, and a sysctl value that differs from any sane host default.
func newTestNS(t *testing.T) testNS {
	t.Helper()
	privtest.Require(t, "creates network namespaces")
	privtest.RequireCmd(t, "ip")

	name := fmt.Sprintf("pdtest-%08x", rand.Uint32())
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for _, cmd := range []string{
		"link set lo up",
		"link add pdv0 type veth peer name pdv1",
		"addr add 192.0.2.1/24 dev pdv0",
		"link set pdv0 up",
		"link set pdv1 up",
		"route add 198.51.100.0/24 via 192.0.2.254 dev pdv0 onlink",
	} {
		run(t, append([]string{"ip", "-n", name}, strings.Fields(cmd)...)...)
	}
	run(t, "ip", "netns", "exec", name, "sh", "-c",
		"echo 99 > /proc/sys/net/ipv4/ip_default_ttl && echo 1 > /proc/sys/net/ipv4/conf/pdv0/rp_filter && echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter")

	ino, err := Inode(RunDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	// "5: pdv0@pdv1: <...>"
	line := run(t, "ip", "-n", name, "-o", "link", "show", "pdv0")
	idx, err := strconv.ParseUint(strings.SplitN(line, ":", 2)[0], 10, 32)
	if err != nil {
		t.Fatalf("parse ifindex from %q: %v", line, err)
	}
	return testNS{name, ino, uint32(idx)}
}

func TestPrivilegedNamedNetns(t *testing.T) {
	ns := newTestNS(t)
	r := NewResolver()

	info, ok := r.Lookup(ns.inode)
	if !ok || info.Name != ns.name || info.Path != RunDir+"/"+ns.name {
		t.Errorf("Lookup = %+v, %v; want name %s", info, ok, ns.name)
	}
	for _, spec := range []string{ns.name, RunDir + "/" + ns.name, strconv.FormatUint(uint64(ns.inode), 10)} {
		if got, err := ParseSpec(spec); err != nil || got != ns.inode {
			t.Errorf("ParseSpec(%q) = %d, %v; want %d", spec, got, err, ns.inode)
		}
	}
	_, err := ParseSpec("pdtest-missing")
	if err == nil || !strings.Contains(err.Error(), ns.name) {
		t.Errorf("ParseSpec(missing) error should list %s: %v", ns.name, err)
	}

	if got := r.DeviceName(ns.inode, ns.ifindex); got != "pdv0" {
		t.Errorf("DeviceName = %q; want pdv0", got)
	}
	if got := r.DeviceName(ns.inode, 99999); got != "if99999" {
		t.Errorf("DeviceName(missing) = %q; want if99999", got)
	}
}

func TestPrivilegedSysctl(t *testing.T) {
	ns := newTestNS(t)
	r := NewResolver()
	got, err := r.Sysctl(ns.inode, "net/ipv4/ip_default_ttl")
	if err != nil || got != "99" {
		t.Fatalf("Sysctl inside = %q, %v; want 99", got, err)
	}
	host, err := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl")
	if err != nil || strings.TrimSpace(string(host)) == "99" {
		t.Fatalf("host value %q (%v) should differ from the netns", host, err)
	}
	if got, err := r.Sysctl(ns.inode, "net.ipv4.conf.pdv0.rp_filter"); err != nil || got != "1" {
		t.Errorf("Sysctl(rp_filter) = %q, %v; want 1", got, err)
	}
	if _, err := r.Sysctl(ns.inode, "net/ipv4/conf/nosuchdev/rp_filter"); err == nil {
		t.Error("Sysctl of a missing device succeeded")
	}
}

func TestPrivilegedRouteGet(t *testing.T) {
	ns := newTestNS(t)
	r := NewResolver()

	rt, err := r.RouteGet(ns.inode, net.ParseIP("198.51.100.7"), RouteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rt.Dev != "pdv0" || !rt.Gateway.Equal(net.ParseIP("192.0.2.254")) || rt.Table != unix.RT_TABLE_MAIN {
		t.Errorf("RouteGet = %+v; want dev pdv0 via 192.0.2.254 table main", rt)
	}

	_, err = r.RouteGet(ns.inode, net.ParseIP("203.0.113.9"), RouteOptions{})
	if !errors.Is(err, ErrNoRoute) {
		t.Errorf("unreachable: err = %v; want ErrNoRoute", err)
	}

	// Input lookup as for a packet arriving on pdv0 from a reachable source.
	rt, err = r.RouteGet(ns.inode, net.ParseIP("192.0.2.1"), RouteOptions{Src: net.ParseIP("192.0.2.2"), Iif: "pdv0"})
	if err != nil || rt.Type != unix.RTN_LOCAL {
		t.Errorf("input route = %+v, %v; want local", rt, err)
	}
	// With strict rp_filter, a source with no route back is rejected.
	if _, err := r.RouteGet(ns.inode, net.ParseIP("192.0.2.1"), RouteOptions{Src: net.ParseIP("203.0.113.5"), Iif: "pdv0"}); err == nil {
		t.Error("input route from an unroutable source succeeded under rp_filter=1")
	}
}

func TestPrivilegedDo(t *testing.T) {
	ns := newTestNS(t)
	r := NewResolver()
	before, err := Inode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	inside := func(want uint32) func() error {
		return func() error {
			h, err := vnetns.Get()
			if err != nil {
				return err
			}
			defer h.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(h), &st); err != nil {
				return err
			}
			if uint32(st.Ino) != want {
				return fmt.Errorf("in netns %d; want %d", st.Ino, want)
			}
			return nil
		}
	}
	if err := r.Do(ns.inode, inside(ns.inode)); err != nil {
		t.Error(err)
	}
	if err := DoPath(RunDir+"/"+ns.name, inside(ns.inode)); err != nil {
		t.Error(err)
	}
	wantErr := errors.New("boom")
	if err := r.Do(ns.inode, func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do error = %v; want fn's error", err)
	}
	func() {
		defer func() {
			if v := recover(); v != "kaboom" {
				t.Errorf("recovered %v; want the panic from fn", v)
			}
		}()
		r.Do(ns.inode, func() error { panic("kaboom") })
	}()
	// Every thread must be back home; the main thread stands in for them.
	for i := 0; i < 50; i++ {
		if err := inside(before)(); err != nil {
			t.Fatalf("after Do: %v", err)
		}
	}
	if after, _ := Inode("/proc/self/ns/net"); after != before {
		t.Errorf("process netns changed: %d -> %d", before, after)
	}
	if err := r.Do(4294967295, inside(0)); err == nil {
		t.Error("Do into an unknown inode succeeded")
	}
}

func TestPrivilegedProcessNetns(t *testing.T) {
	privtest.Require(t, "creates network namespaces")
	privtest.RequireCmd(t, "unshare")
	cmd := exec.Command("unshare", "--net", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	var ino uint32
	// unshare replaces itself with sleep after creating the namespace.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		var err error
		ino, err = Inode(path)
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare did not start: %v", err)
		}
	}
	r := NewResolver()
	want := fmt.Sprintf("pid %d (sleep)", cmd.Process.Pid)
	if info, ok := r.Lookup(ino); !ok || info.Name != want || info.Path != path {
		t.Errorf("Lookup = %+v, %v; want %q at %s", info, ok, want, path)
	}
	if got, err := r.Sysctl(ino, "net/ipv4/ip_default_ttl"); err != nil || got == "" {
		t.Errorf("Sysctl in process netns = %q, %v", got, err)
	}
}
