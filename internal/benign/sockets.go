package benign

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// Doer runs a function inside a network namespace and reads its sysctls
// (netns.Resolver).
type Doer interface {
	Do(inode uint32, fn func() error) error
	Sysctl(inode uint32, key string) (string, error)
}

// Sysctl reads key in netns.
func (s NetnsSockets) Sysctl(netns uint32, key string) (string, error) {
	return s.NS.Sysctl(netns, key)
}

// NetnsSockets reads sockets inside each namespace: /proc/net/raw for raw
// sockets, sock_diag for TCP.
type NetnsSockets struct {
	NS Doer
	// States names TCP states by kernel value, as sock_diag reports them.
	States func() map[uint8]string
}

// RawICMP reads /proc/thread-self/net/raw{,6} inside netns: the "port" of
// a raw socket there is its protocol.
func (s NetnsSockets) RawICMP(netns uint32, v6 bool) (bool, error) {
	file, proto := "raw", uint64(1) // IPPROTO_ICMP
	if v6 {
		file, proto = "raw6", 58 // IPPROTO_ICMPV6
	}
	var found bool
	err := s.NS.Do(netns, func() error {
		var err error
		found, err = rawHas("/proc/thread-self/net/"+file, proto)
		return err
	})
	return found, err
}

// rawHas says whether the /proc/net/raw-format file lists a socket of proto.
func rawHas(path string, proto uint64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("read raw sockets: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		_, port, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(port, 16, 16); err == nil && p == proto {
			return true, nil
		}
	}
	return false, sc.Err()
}

// Joined6 reads /proc/thread-self/net/igmp6 inside netns: one line per
// device and group joined ("idx dev group-in-hex users flags timer").
func (s NetnsSockets) Joined6(netns uint32, dev string, group netip.Addr) (bool, error) {
	want := hex.EncodeToString(group.AsSlice())
	var joined bool
	err := s.NS.Do(netns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/igmp6")
		if err != nil {
			return fmt.Errorf("read multicast groups: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[1] == dev && f[2] == want {
				joined = true
			}
		}
		return nil
	})
	return joined, err
}

// TCPState asks sock_diag, inside netns, for the socket with these local
// and remote addresses, in any state (TIME_WAIT included).
func (s NetnsSockets) TCPState(netns uint32, local, remote string, lport, rport uint16) (string, error) {
	l, r := net.ParseIP(local), net.ParseIP(remote)
	if l == nil || r == nil {
		return "", fmt.Errorf("bad address %q or %q", local, remote)
	}
	var sock *netlink.Socket
	err := s.NS.Do(netns, func() error {
		var err error
		sock, err = netlink.SocketGet(&net.TCPAddr{IP: l, Port: int(lport)}, &net.TCPAddr{IP: r, Port: int(rport)})
		return err
	})
	if err != nil {
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			return "", err
		}
		return "", nil // no such socket (the library says so with an error)
	}
	if !sock.ID.Source.Equal(l) || !sock.ID.Destination.Equal(r) {
		return "", nil // the dump filters by port only
	}
	if s.States != nil {
		if n := s.States()[sock.State]; n != "" {
			return n, nil
		}
	}
	return fmt.Sprintf("state %d", sock.State), nil
}
