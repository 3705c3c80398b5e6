package cause

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/nfstate"
)

// Cached is a System that remembers answers, failures included, for a
// short while. A sysctl read or a route lookup in a namespace costs a
// thread switch into it and a file read or netlink round trip (tens of
// microseconds); a storm of identical drops would ask the same questions
// hundreds of thousands of times a second, and the settings they read
// rarely change within a second.
type Cached struct {
	sys System
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	sysctls map[sysctlKey]answer[string]
	routes  map[routeKey]answer[netns.Route]
	extra   memo
}

var errNoTables = errors.New("this system does not read netfilter tables")

// cacheMax bounds each map: namespaces and addresses churn.
const cacheMax = 4096

type answer[T any] struct {
	val     T
	err     error
	expires time.Time
}

type sysctlKey struct {
	inode uint32
	key   string
}

type routeKey struct {
	inode    uint32
	dst, src [16]byte
	iif      string
	mark     uint32
}

// NewCached wraps sys; answers are reused for ttl.
func NewCached(sys System, ttl time.Duration) *Cached {
	return &Cached{sys: sys, ttl: ttl, now: time.Now, sysctls: map[sysctlKey]answer[string]{},
		routes: map[routeKey]answer[netns.Route]{}}
}

// Sysctl implements System.
func (c *Cached) Sysctl(inode uint32, key string) (string, error) {
	k := sysctlKey{inode, key}
	now := c.now()
	c.mu.Lock()
	a, ok := c.sysctls[k]
	c.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.val, a.err
	}
	v, err := c.sys.Sysctl(inode, key)
	c.mu.Lock()
	if len(c.sysctls) >= cacheMax {
		clear(c.sysctls)
	}
	c.sysctls[k] = answer[string]{v, err, now.Add(c.ttl)}
	c.mu.Unlock()
	return v, err
}

// RouteGet implements System. Callers must not modify the returned
// route's addresses: they are shared with later answers.
func (c *Cached) RouteGet(inode uint32, dst net.IP, opts netns.RouteOptions) (netns.Route, error) {
	k := routeKey{inode: inode, iif: opts.Iif, mark: opts.Mark}
	copy(k.dst[:], dst.To16())
	copy(k.src[:], opts.Src.To16())
	now := c.now()
	c.mu.Lock()
	a, ok := c.routes[k]
	c.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.val, a.err
	}
	rt, err := c.sys.RouteGet(inode, dst, opts)
	c.mu.Lock()
	if len(c.routes) >= cacheMax {
		clear(c.routes)
	}
	c.routes[k] = answer[netns.Route]{rt, err, now.Add(c.ttl)}
	c.mu.Unlock()
	return rt, err
}

// NetfilterFind implements NetfilterReader when the wrapped System does
// (which caches by itself: its answers are read per namespace).
func (c *Cached) NetfilterFind(inode uint32, q nfstate.Query) (*nfstate.Finding, error) {
	nr, ok := c.sys.(NetfilterReader)
	if !ok {
		return nil, errNoTables
	}
	return nr.NetfilterFind(inode, q)
}
