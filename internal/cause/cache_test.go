package cause

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/netns"
)

type countingSystem struct{ sysctls, routes int }

func (c *countingSystem) Sysctl(inode uint32, key string) (string, error) {
	c.sysctls++
	return key, nil
}

func (c *countingSystem) RouteGet(inode uint32, dst net.IP, opts netns.RouteOptions) (netns.Route, error) {
	c.routes++
	if dst.Equal(net.ParseIP("192.0.2.9")) {
		return netns.Route{}, netns.ErrNoRoute
	}
	return netns.Route{Dev: opts.Iif + dst.String()}, nil
}

func TestCachedReusesAnswersUntilTTL(t *testing.T) {
	sys := &countingSystem{}
	now := time.Unix(100, 0)
	c := NewCached(sys, time.Second)
	c.now = func() time.Time { return now }

	for i := 0; i < 3; i++ {
		if v, _ := c.Sysctl(1, "net/ipv4/ip_forward"); v != "net/ipv4/ip_forward" {
			t.Fatalf("sysctl = %q", v)
		}
		if rt, _ := c.RouteGet(1, net.ParseIP("10.0.0.1"), netns.RouteOptions{Iif: "eth0"}); rt.Dev != "eth010.0.0.1" {
			t.Fatalf("route = %+v", rt)
		}
		if _, err := c.RouteGet(1, net.ParseIP("192.0.2.9"), netns.RouteOptions{}); !errors.Is(err, netns.ErrNoRoute) {
			t.Fatalf("failed lookup: %v", err)
		}
	}
	if sys.sysctls != 1 || sys.routes != 2 {
		t.Fatalf("asked %d sysctls and %d routes, want 1 and 2", sys.sysctls, sys.routes)
	}
	// Other namespaces, keys and options are other questions.
	c.Sysctl(2, "net/ipv4/ip_forward")
	c.Sysctl(1, "net/ipv4/conf/all/rp_filter")
	c.RouteGet(1, net.ParseIP("10.0.0.1"), netns.RouteOptions{Iif: "eth1"})
	if sys.sysctls != 3 || sys.routes != 3 {
		t.Fatalf("asked %d sysctls and %d routes, want 3 and 3", sys.sysctls, sys.routes)
	}
	now = now.Add(time.Second)
	c.Sysctl(1, "net/ipv4/ip_forward")
	c.RouteGet(1, net.ParseIP("192.0.2.9"), netns.RouteOptions{})
	if sys.sysctls != 4 || sys.routes != 4 {
		t.Fatalf("after the TTL: asked %d sysctls and %d routes, want 4 and 4", sys.sysctls, sys.routes)
	}
}
