package testnet

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// CauseSocketBufferFull: the receiving socket's buffer was full.
const CauseSocketBufferFull = "socket_buffer_full"

// sockbufPort is the port of SocketBufferFull's receiver.
const sockbufPort = 31339

// SocketBufferFull: a UDP receiver in the server, owned by this test
// process, asks for the smallest receive buffer and never reads; the
// client's burst of datagrams overflows it.
func SocketBufferFull(tb testing.TB) *Scenario {
	tb.Helper()
	n := New(tb)
	c, s := n.NS("client"), n.NS("server")
	const dst = "10.231.1.3"
	n.Link(c, "cl0", clientIP+"/24", s, "sv0", dst+"/24")
	control(tb, c, dst)
	var conn *net.UDPConn
	err := s.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(dst), Port: sockbufPort})
		return err
	})
	if err != nil {
		tb.Fatalf("testnet: listen udp: %v", err)
	}
	n.track(conn)
	if err := conn.SetReadBuffer(1); err != nil {
		tb.Fatalf("testnet: SO_RCVBUF: %v", err)
	}
	// What the kernel made of it (it doubles and raises to a minimum).
	raw, err := conn.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var rcvbuf int
	var serr error
	if err := raw.Control(func(fd uintptr) { rcvbuf, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || serr != nil {
		tb.Fatalf("testnet: read SO_RCVBUF: %v %v", err, serr)
	}
	payload := make([]byte, 1000)
	return &Scenario{
		Name: "SocketBufferFull", Net: n, Client: c, Server: s,
		Trigger: func() error {
			for i := 0; i < 20; i++ {
				if err := c.UDP(dst, sockbufPort, payload); err != nil {
					return err
				}
			}
			return nil
		},
		Expect: Expect{
			Drop: true, Reason: "SOCKET_RCVBUFF", Cause: CauseSocketBufferFull,
			Netns: s.Name(), Iface: "sv0",
			Src: clientIP, Dst: dst, Proto: "udp", DstPort: sockbufPort,
			Facts: map[string]string{"socket": fmt.Sprintf("udp %s:%d", dst, sockbufPort),
				"socket_rcvbuf": strconv.Itoa(rcvbuf), "socket_owner": fmt.Sprintf("%d (%s)", os.Getpid(), comm())},
		},
	}
}

// comm is this process's name as /proc shows it.
func comm() string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return ""
	}
	return string(b[:len(b)-1])
}
