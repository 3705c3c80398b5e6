package testnet

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Ping sends count echo requests to dst (IPv4 or IPv6) and reports whether
// any reply came back within timeout. The error is only for ping failing
// to run at all, not for lost packets.
func (ns *NS) Ping(dst string, count int, timeout time.Duration) (bool, error) {
	secs := int(math.Ceil(timeout.Seconds()))
	if secs < 1 {
		secs = 1
	}
	// -W bounds the wait after the last request; -w is not used because
	// with it ping keeps sending until count replies arrive.
	args := []string{"ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", strconv.Itoa(secs)}
	if strings.Contains(dst, ":") {
		args = append(args, "-6")
	}
	out, err := ns.Run(append(args, dst)...)
	if err == nil {
		return true, nil
	}
	// ping exits 1 when no reply came (including ICMP errors back), 2 on
	// other errors such as "Network is unreachable" when sending.
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil
	}
	if strings.Contains(out, "unreachable") {
		return false, nil
	}
	return false, fmt.Errorf("ping %s: %w", dst, err)
}

// UDP sends one datagram to dst:port from this namespace. No reply is
// awaited: the datagram is fire-and-forget like the field traffic.
func (ns *NS) UDP(dst string, port int, payload []byte) error {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("udp", net.JoinHostPort(dst, strconv.Itoa(port)), time.Second)
		return err
	})
	if err != nil {
		return fmt.Errorf("udp to %s:%d: %w", dst, port, err)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("udp to %s:%d: %w", dst, port, err)
	}
	return nil
}

// TCPConnect opens (and closes) a TCP connection to dst:port.
func (ns *NS) TCPConnect(dst string, port int, timeout time.Duration) error {
	c, err := ns.dialTCP(dst, port, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// Fetch connects to dst:port and returns the first line the server sends,
// which for ListenTCP servers names the backend that answered.
func (ns *NS) Fetch(dst string, port int, timeout time.Duration) (string, error) {
	c, err := ns.dialTCP(dst, port, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s:%d: %w", dst, port, err)
	}
	return strings.TrimSpace(line), nil
}

func (ns *NS) dialTCP(dst string, port int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", net.JoinHostPort(dst, strconv.Itoa(port)), timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tcp connect to %s:%d from %s: %w", dst, port, ns.short, err)
	}
	return c, nil
}

// ListenTCP serves port on all addresses of this namespace; every
// connection receives banner and a newline, then is closed. The listener
// lives until Net.Close.
func (ns *NS) ListenTCP(port int, banner string) error {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", ":"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		return fmt.Errorf("listen tcp/%d in %s: %w", port, ns.short, err)
	}
	ns.net.track(l)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by Net.Close
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = fmt.Fprintln(c, banner)
			_ = c.Close()
		}
	}()
	return nil
}
