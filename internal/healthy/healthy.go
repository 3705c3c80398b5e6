// Package healthy generates traffic that works, between two network
// namespaces: IPv4 and IPv6 pings (the real ping binary), many short TCP
// connections that both sides close cleanly, one long keep-alive TCP
// exchange and UDP request/response. Nothing of it is lost, so whatever
// pktdrop reports as a drop meanwhile is a false drop (make bench, and the
// e2e tests of internal/benign).
package healthy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// Config says where the traffic runs.
type Config struct {
	Client, Server string // namespace names under /var/run/netns
	Server4        string // the server's IPv4 address
	Server6        string // its IPv6 address ("" for none)
	Port           int    // first of four ports used on the server
	Duration       time.Duration
	// ShortGap is the pause between two short connections.
	ShortGap time.Duration
}

// Stats counts what was exchanged, every exchange checked end to end.
type Stats struct {
	PingRuns  int   // ping processes that got every reply
	Short     int64 // short connections with a full request/response
	KeepAlive int64 // requests answered on the keep-alive connection
	UDP       int64 // UDP requests answered
	Failed    []string
	failedMu  sync.Mutex
}

func (s *Stats) fail(format string, args ...any) {
	s.failedMu.Lock()
	defer s.failedMu.Unlock()
	if len(s.Failed) < 20 {
		s.Failed = append(s.Failed, fmt.Sprintf(format, args...))
	}
}

// String is one line for logs.
func (s *Stats) String() string {
	return fmt.Sprintf("ping runs %d, short TCP connections %d, keep-alive exchanges %d, UDP exchanges %d, failures %d",
		s.PingRuns, s.Short, s.KeepAlive, s.UDP, len(s.Failed))
}

func path(ns string) string { return "/var/run/netns/" + ns }

// Run runs the traffic for cfg.Duration. Failures of the traffic itself
// (a reply missing) are in Stats.Failed: the traffic was not healthy then.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	if cfg.ShortGap == 0 {
		cfg.ShortGap = 10 * time.Millisecond
	}
	st := &Stats{}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	servers, err := serve(cfg)
	if err != nil {
		return nil, err
	}
	defer servers.close()
	var wg sync.WaitGroup
	addrs := []string{cfg.Server4}
	if cfg.Server6 != "" {
		addrs = append(addrs, cfg.Server6)
	}
	var pingRuns atomic.Int64
	for _, a := range addrs {
		wg.Add(3)
		go func() { defer wg.Done(); pings(ctx, cfg, a, st, &pingRuns) }()
		go func() { defer wg.Done(); shortConns(ctx, cfg, a, st) }()
		go func() { defer wg.Done(); udpExchange(ctx, cfg, a, st) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); keepAlive(ctx, cfg, cfg.Server4, st) }()
	wg.Wait()
	st.PingRuns = int(pingRuns.Load())
	return st, nil
}

// servers answer in the server namespace until closed.
type servers struct {
	closers []io.Closer
	wg      sync.WaitGroup
}

func (s *servers) close() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.wg.Wait()
}

// serve starts, on Port (short connections: read a line, answer, close),
// Port+1 (keep-alive: answer each line), and UDP Port+2 (answer each
// datagram), on all addresses.
func serve(cfg Config) (*servers, error) {
	s := &servers{}
	var short, keep net.Listener
	var udp net.PacketConn
	err := netns.DoPath(path(cfg.Server), func() error {
		var err error
		if short, err = net.Listen("tcp", ":"+strconv.Itoa(cfg.Port)); err != nil {
			return err
		}
		s.closers = append(s.closers, short)
		if keep, err = net.Listen("tcp", ":"+strconv.Itoa(cfg.Port+1)); err != nil {
			return err
		}
		s.closers = append(s.closers, keep)
		udp, err = net.ListenPacket("udp", ":"+strconv.Itoa(cfg.Port+2))
		if err == nil {
			s.closers = append(s.closers, udp)
		}
		return err
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("healthy traffic servers in %s: %w", cfg.Server, err)
	}
	accept := func(l net.Listener, handle func(net.Conn)) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				s.wg.Add(1)
				go func() { defer s.wg.Done(); defer c.Close(); handle(c) }()
			}
		}()
	}
	accept(short, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "re: "+line)
		if line == "hello\n" {
			// Wait for the client's close: its FIN first, then ours.
			_, _ = r.ReadByte()
		}
	})
	accept(keep, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, "re: "+line); err != nil {
				return
			}
		}
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = udp.WriteTo(buf[:n], from)
		}
	}()
	return s, nil
}

// pings runs ping repeatedly (as a user would: a few echo requests, then
// the statistics) until ctx ends.
func pings(ctx context.Context, cfg Config, addr string, st *Stats, runs *atomic.Int64) {
	for ctx.Err() == nil {
		args := []string{"netns", "exec", cfg.Client, "ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "2"}
		if strings.Contains(addr, ":") {
			args = append(args, "-6")
		}
		out, err := exec.Command("ip", append(args, addr)...).CombinedOutput()
		if err != nil {
			st.fail("ping %s: %v: %s", addr, err, strings.TrimSpace(string(out)))
			time.Sleep(200 * time.Millisecond)
			continue
		}
		runs.Add(1)
	}
}

func dial(cfg Config, network, addr string, port int) (net.Conn, error) {
	var c net.Conn
	err := netns.DoPath(path(cfg.Client), func() error {
		var err error
		c, err = net.DialTimeout(network, net.JoinHostPort(addr, strconv.Itoa(port)), 2*time.Second)
		return err
	})
	return c, err
}

// shortConns opens connection after connection: a request, its answer,
// and a clean close by both sides.
func shortConns(ctx context.Context, cfg Config, addr string, st *Stats) {
	for i := 0; ctx.Err() == nil; i++ {
		if err := shortConn(cfg, addr, i%2 == 0); err != nil {
			st.fail("short connection to %s: %v", addr, err)
		} else {
			atomic.AddInt64(&st.Short, 1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.ShortGap):
		}
	}
}

func shortConn(cfg Config, addr string, clientFirst bool) error {
	c, err := dial(cfg, "tcp", addr, cfg.Port)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "bye\n" // the server closes first
	if clientFirst {
		req = "hello\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "re: "+req {
		return fmt.Errorf("answer %q", line)
	}
	if !clientFirst {
		if _, err := r.ReadByte(); err != io.EOF {
			return fmt.Errorf("server did not close: %v", err)
		}
	}
	return nil
}

// keepAlive exchanges a request and its answer every 20 ms on one
// connection for the whole run.
func keepAlive(ctx context.Context, cfg Config, addr string, st *Stats) {
	c, err := dial(cfg, "tcp", addr, cfg.Port+1)
	if err != nil {
		st.fail("keep-alive connection: %v", err)
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := 0; ctx.Err() == nil; i++ {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		req := "ping " + strconv.Itoa(i) + "\n"
		if _, err := io.WriteString(c, req); err != nil {
			st.fail("keep-alive write: %v", err)
			return
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "re: "+req {
			st.fail("keep-alive answer %q: %v", line, err)
			return
		}
		atomic.AddInt64(&st.KeepAlive, 1)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// udpExchange sends a datagram every 20 ms and waits for its echo.
func udpExchange(ctx context.Context, cfg Config, addr string, st *Stats) {
	c, err := dial(cfg, "udp", addr, cfg.Port+2)
	if err != nil {
		st.fail("udp socket: %v", err)
		return
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := 0; ctx.Err() == nil; i++ {
		req := "q" + strconv.Itoa(i)
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			st.fail("udp write: %v", err)
			return
		}
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != req {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				st.fail("udp answer to %s timed out", req)
				continue
			}
			st.fail("udp answer %q: %v", buf[:n], err)
			return
		}
		atomic.AddInt64(&st.UDP, 1)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
