package netns

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoRoute matches (errors.Is) a lookup that found no usable route.
var ErrNoRoute = errors.New("no route to host")

// RouteOptions narrows a route lookup the way a received packet would.
type RouteOptions struct {
	// Src makes the lookup source-specific (policy routing on from).
	Src net.IP
	// Iif turns the lookup into an input-route lookup as if the packet
	// arrived on that device, which is what rp_filter does when it asks
	// for the route back to a packet's source.
	Iif  string
	Mark uint32
}

// Route is the kernel's answer to a route lookup.
type Route struct {
	Dev     string // output device ("" for e.g. local or blackhole)
	Ifindex int
	Gateway net.IP // nil when directly connected
	Src     net.IP // preferred source address
	Table   int
	Type    int // RTN_* as reported by the kernel
	MTU     int // the route's mtu metric, 0 when it has none
}

// RouteGet performs `ip route get` inside netns inode.
func (r *Resolver) RouteGet(inode uint32, dst net.IP, opts RouteOptions) (Route, error) {
	var out Route
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		routes, err := h.RouteGetWithOptions(dst, &netlink.RouteGetOptions{
			SrcAddr: opts.Src,
			Iif:     opts.Iif,
			Mark:    opts.Mark,
		})
		if err != nil {
			if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
				return fmt.Errorf("%w (%w)", ErrNoRoute, err)
			}
			return err
		}
		if len(routes) == 0 {
			return ErrNoRoute
		}
		rt := routes[0]
		out = Route{Ifindex: rt.LinkIndex, Gateway: rt.Gw, Src: rt.Src, Table: rt.Table, Type: rt.Type, MTU: rt.MTU}
		if rt.LinkIndex > 0 {
			if l, err := h.LinkByIndex(rt.LinkIndex); err == nil {
				out.Dev = l.Attrs().Name
			}
		}
		return nil
	})
	if err != nil {
		return Route{}, fmt.Errorf("route to %s in netns %d: %w", dst, inode, err)
	}
	return out, nil
}
