package cause

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
	"golang.org/x/sys/unix"
)

// SocketReader lists UDP sockets with their buffers (*netns.Resolver).
type SocketReader interface {
	UDPSockets(inode uint32, family int, port uint16) ([]netns.Socket, error)
}

// rcvBufFull names the socket whose receive buffer was full: its address
// and port, its buffer size and what is queued, and who owns it.
func rcvBufFull(r *report.Report, sys System) {
	r.Cause = "socket_buffer_full"
	r.Explanation = "the receiving socket's buffer was full: the application does not read fast enough"
	r.Hint = "raise the socket's SO_RCVBUF (net.core.rmem_max / rmem_default) or make the reader faster"
	sr, ok := sys.(SocketReader)
	if !ok || r.Proto != "udp" || r.Dport == 0 {
		return
	}
	family := unix.AF_INET
	if r.Family == "ipv6" {
		family = unix.AF_INET6
	}
	socks, err := sr.UDPSockets(r.Netns, family, r.Dport)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			evidence(r, "socket_error", err.Error())
		}
		return
	}
	dst := net.ParseIP(r.Dst)
	var s *netns.Socket
	for i := range socks {
		if socks[i].Local.Equal(dst) || (s == nil && socks[i].Local.IsUnspecified()) {
			s = &socks[i]
		}
	}
	if s == nil {
		return
	}
	addr := report.Tuple(s.Local.String(), s.Port)
	evidence(r, "socket", "udp "+addr)
	evidence(r, "socket_rcvbuf", strconv.FormatUint(uint64(s.RcvBuf), 10))
	evidence(r, "socket_queued", strconv.FormatUint(uint64(s.RmemNow), 10))
	evidence(r, "socket_drops", strconv.FormatUint(uint64(s.Drops), 10))
	owner := "no process in this pid namespace holds it"
	if len(s.Owners) > 0 {
		owner = "held by pid " + strings.Join(s.Owners, ", ")
		evidence(r, "socket_owner", strings.Join(s.Owners, ", "))
	}
	r.Explanation = fmt.Sprintf("the receive buffer of the udp socket %s in netns %s was full (SO_RCVBUF %d bytes, %d queued now, %d datagrams dropped so far; %s): "+
		"the application does not read fast enough", addr, r.NetnsName, s.RcvBuf, s.RmemNow, s.Drops, owner)
	r.Hint = fmt.Sprintf("make the reader of udp %s faster, or raise its SO_RCVBUF above %d (capped by net.core.rmem_max; "+
		"net.core.rmem_default for sockets that do not set it)", addr, s.RcvBuf)
}

// udpQueue: before drop reasons, udp_queue_rcv_one_skb frees what a full
// buffer, a socket filter or a bad checksum refused; a socket whose queue
// has no room for the datagram tells the first.
func udpQueue(r *report.Report, sys System) {
	rcvBufFull(r, sys)
	q, errQ := strconv.Atoi(r.Evidence["socket_queued"])
	b, errB := strconv.Atoi(r.Evidence["socket_rcvbuf"])
	if errQ == nil && errB == nil && q+int(r.Len) > b {
		return
	}
	r.Cause = "udp_queue"
	r.Explanation = "the udp socket for port " + strconv.Itoa(int(r.Dport)) + " refused it (a socket filter, a bad checksum, " +
		"or a buffer that was full then but is not now) in netns " + r.NetnsName
	r.Hint = "see `nstat -az | grep -i udp` in that netns: UdpRcvbufErrors, UdpInCsumErrors"
}
