package testnet

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// udpPort has no listener in UDPNoListener's server.
const udpPort = 31337

// UDPNoListener: a datagram to a port nobody listens on in the server is
// dropped by the UDP stack (NO_SOCKET) after the ICMP port unreachable.
func UDPNoListener(tb testing.TB) *Scenario {
	tb.Helper()
	return udpNoListener(tb, false)
}

// UDPNoListener6 is UDPNoListener over IPv6.
func UDPNoListener6(tb testing.TB) *Scenario {
	tb.Helper()
	return udpNoListener(tb, true)
}

func udpNoListener(tb testing.TB, v6 bool) *Scenario {
	tb.Helper()
	n := New(tb)
	c, s := n.NS("client"), n.NS("server")
	// Client and server share one link and subnet: no router involved.
	name, src, dst, loc, counter := "UDPNoListener", clientIP, "10.231.1.3", "__udp4_lib_rcv", "UdpNoPorts"
	if v6 {
		name, src, dst, loc, counter = "UDPNoListener6", clientIP6, "fd00:231:1::3", "__udp6_lib_rcv", "Udp6NoPorts"
		n.Link(c, "cl0", src+"/64", s, "sv0", dst+"/64")
	} else {
		n.Link(c, "cl0", src+"/24", s, "sv0", dst+"/24")
	}
	control(tb, c, dst)
	return &Scenario{
		Name: name, Net: n, Client: c, Server: s,
		Trigger: func() error {
			return c.UDP(dst, udpPort, []byte("pktdrop testnet probe\n"))
		},
		Expect: Expect{
			Drop: true, Reason: "NO_SOCKET", Location: loc, Cause: CauseNoSocket,
			Netns: s.Name(), Iface: "sv0", Counter: counter,
			Src: src, Dst: dst, Proto: "udp", DstPort: udpPort,
		},
	}
}

// tcpPort has no listener in TCPNoListener's server.
const tcpPort = 31338

// TCPNoListener: a SYN to a closed port is answered with a RST and then
// dropped by tcp_v4_rcv (NO_SOCKET); the client sees "connection refused".
func TCPNoListener(tb testing.TB) *Scenario {
	tb.Helper()
	n := New(tb)
	c, s := n.NS("client"), n.NS("server")
	const dst = "10.231.1.3"
	n.Link(c, "cl0", clientIP+"/24", s, "sv0", dst+"/24")
	control(tb, c, dst)
	return &Scenario{
		Name: "TCPNoListener", Net: n, Client: c, Server: s,
		Trigger: func() error {
			err := c.TCPConnect(dst, tcpPort, 2*time.Second)
			if err == nil {
				return fmt.Errorf("tcp connect to %s:%d succeeded; expected no listener", dst, tcpPort)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
			return nil
		},
		Expect: Expect{
			Drop: true, Reason: "NO_SOCKET", Location: "tcp_v4_rcv", Cause: CauseNoSocket,
			Netns: s.Name(), Iface: "sv0", Counter: "TcpOutRsts",
			Src: clientIP, Dst: dst, Proto: "tcp", DstPort: tcpPort,
		},
	}
}
