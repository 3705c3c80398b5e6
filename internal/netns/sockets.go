package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Socket is a UDP socket as sock_diag reports it, with its buffer.
type Socket struct {
	Local   net.IP
	Port    uint16
	Inode   uint32
	RcvBuf  uint32 // SO_RCVBUF (the kernel's doubled value)
	RmemNow uint32 // bytes queued now
	Drops   uint32 // datagrams the socket dropped so far (sk_drops)
	// Owners are the processes holding the socket ("1234 (dns)"); empty
	// when no process in this pid namespace has it open.
	Owners []string
}

// sock_diag layout (linux/inet_diag.h, linux/sock_diag.h): UAPI.
const (
	inetDiagSkMemInfo = 7 // INET_DIAG_SKMEMINFO
	skMemRmemAlloc    = 0 // SK_MEMINFO_RMEM_ALLOC
	skMemRcvbuf       = 1 // SK_MEMINFO_RCVBUF
	skMemDrops        = 8 // SK_MEMINFO_DROPS
	inetDiagMsgLen    = 72
)

type diagReq struct{ family, proto uint8 }

func (d diagReq) Len() int { return 56 }
func (d diagReq) Serialize() []byte {
	b := make([]byte, 56)
	b[0], b[1], b[2] = d.family, d.proto, 1<<(inetDiagSkMemInfo-1)
	binary.NativeEndian.PutUint32(b[4:], 0xffffffff)  // all states
	binary.NativeEndian.PutUint32(b[48:], 0xffffffff) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(b[52:], 0xffffffff)
	return b
}

// UDPSockets lists the UDP sockets bound to port in netns inode, with
// their receive buffers and owning processes.
func (r *Resolver) UDPSockets(inode uint32, family int, port uint16) ([]Socket, error) {
	var out []Socket
	err := r.Do(inode, func() error {
		req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
		req.AddData(diagReq{uint8(family), unix.IPPROTO_UDP})
		msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			if len(m) < inetDiagMsgLen {
				continue
			}
			sport := binary.BigEndian.Uint16(m[4:6])
			if sport != port {
				continue
			}
			s := Socket{Port: sport, Inode: binary.NativeEndian.Uint32(m[68:72])}
			if family == unix.AF_INET {
				s.Local = net.IP(append([]byte{}, m[8:12]...))
			} else {
				s.Local = net.IP(append([]byte{}, m[8:24]...))
			}
			attrs, err := nl.ParseRouteAttr(m[inetDiagMsgLen:])
			if err != nil {
				return err
			}
			for _, a := range attrs {
				if a.Attr.Type == inetDiagSkMemInfo && len(a.Value) >= 4*(skMemDrops+1) {
					v := func(i int) uint32 { return binary.NativeEndian.Uint32(a.Value[4*i:]) }
					s.RcvBuf, s.RmemNow, s.Drops = v(skMemRcvbuf), v(skMemRmemAlloc), v(skMemDrops)
				}
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("udp sockets on port %d in netns %d: %w", port, inode, err)
	}
	for i := range out {
		out[i].Owners = socketOwners(r.procDir, out[i].Inode)
	}
	return out, nil
}

// socketOwners finds the processes with socket inode open by reading
// every /proc/PID/fd link: slow, so only for a drop that names a socket.
func socketOwners(procDir string, inode uint32) []string {
	want := "socket:[" + strconv.FormatUint(uint64(inode), 10) + "]"
	var out []string
	for _, pid := range pids(procDir) {
		dir := filepath.Join(procDir, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				name := strconv.Itoa(pid)
				if comm, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "comm")); err == nil {
					name += " (" + strings.TrimSpace(string(comm)) + ")"
				}
				out = append(out, name)
				break
			}
		}
	}
	return out
}
