package netns

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkInfo is what a cause needs of a device.
type LinkInfo struct {
	Name  string
	Index int
	MTU   int
}

// Link reads device name in netns inode.
func (r *Resolver) Link(inode uint32, name string) (LinkInfo, error) {
	var out LinkInfo
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		a := l.Attrs()
		out = LinkInfo{Name: a.Name, Index: a.Index, MTU: a.MTU}
		return nil
	})
	if err != nil {
		return LinkInfo{}, fmt.Errorf("link %s in netns %d: %w", name, inode, err)
	}
	return out, nil
}

// Neighbour is one entry of the neighbour (ARP/NDP) table.
type Neighbour struct {
	IP    net.IP
	Dev   string
	MAC   string
	State string // as `ip neigh` prints it: FAILED, INCOMPLETE, REACHABLE ...
}

// ErrNoNeighbour: the table has no entry for the address (it was never
// created, or was already garbage-collected).
var ErrNoNeighbour = fmt.Errorf("no neighbour entry")

// Neighbour reads the entry for ip on device dev in netns inode.
func (r *Resolver) Neighbour(inode uint32, dev string, ip net.IP) (Neighbour, error) {
	var out Neighbour
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		l, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		family := unix.AF_INET
		if ip.To4() == nil {
			family = unix.AF_INET6
		}
		ns, err := h.NeighList(l.Attrs().Index, family)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.IP.Equal(ip) {
				out = Neighbour{IP: n.IP, Dev: dev, State: NeighState(n.State)}
				if len(n.HardwareAddr) > 0 {
					out.MAC = n.HardwareAddr.String()
				}
				return nil
			}
		}
		return ErrNoNeighbour
	})
	if err != nil {
		return Neighbour{}, fmt.Errorf("neighbour %s dev %s in netns %d: %w", ip, dev, inode, err)
	}
	return out, nil
}

// NeighState names NUD_* bits as ip-neighbour(8) does.
func NeighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"}}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}
