package cause

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// memo caches the answers of the optional System capabilities (policy
// routing, neighbours, links, tc, sockets) for Cached, failures included.
type memo struct {
	mu sync.Mutex
	m  map[string]answer[any]
}

func (m *memo) get(c *Cached, key string, ask func() (any, error)) (any, error) {
	now := c.now()
	m.mu.Lock()
	a, ok := m.m[key]
	m.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.val, a.err
	}
	v, err := ask()
	m.mu.Lock()
	if m.m == nil || len(m.m) >= cacheMax {
		m.m = map[string]answer[any]{}
	}
	m.m[key] = answer[any]{v, err, now.Add(c.ttl)}
	m.mu.Unlock()
	return v, err
}

// cachedAsk is one cached call of an optional capability of c.sys; it
// answers errors.ErrUnsupported when c.sys lacks it.
func cachedAsk[I any, T any](c *Cached, key string, call func(I) (T, error)) (T, error) {
	var zero T
	i, ok := c.sys.(I)
	if !ok {
		return zero, errors.ErrUnsupported
	}
	v, err := c.extra.get(c, fmt.Sprintf("%T/%s", zero, key), func() (any, error) { return call(i) })
	if v == nil {
		return zero, err
	}
	return v.(T), err
}

// PolicyRoute implements PolicyRouter.
func (c *Cached) PolicyRoute(inode uint32, q netns.Query) (netns.Decision, error) {
	return cachedAsk(c, fmt.Sprint(inode, q), func(p PolicyRouter) (netns.Decision, error) { return p.PolicyRoute(inode, q) })
}

// Link implements LinkReader.
func (c *Cached) Link(inode uint32, name string) (netns.LinkInfo, error) {
	return cachedAsk(c, fmt.Sprint(inode, name), func(l LinkReader) (netns.LinkInfo, error) { return l.Link(inode, name) })
}

// Neighbour implements NeighbourReader.
func (c *Cached) Neighbour(inode uint32, dev string, ip net.IP) (netns.Neighbour, error) {
	return cachedAsk(c, fmt.Sprint(inode, dev, ip), func(n NeighbourReader) (netns.Neighbour, error) { return n.Neighbour(inode, dev, ip) })
}

// TCFilters implements TCReader.
func (c *Cached) TCFilters(inode uint32, dev string) ([]netns.TCFilter, error) {
	return cachedAsk(c, fmt.Sprint(inode, dev), func(t TCReader) ([]netns.TCFilter, error) { return t.TCFilters(inode, dev) })
}

// UDPSockets implements SocketReader.
func (c *Cached) UDPSockets(inode uint32, family int, port uint16) ([]netns.Socket, error) {
	return cachedAsk(c, fmt.Sprint(inode, family, port), func(s SocketReader) ([]netns.Socket, error) {
		return s.UDPSockets(inode, family, port)
	})
}
