package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/healthy"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// benignNet is a client and a server namespace joined by a veth pair,
// with IPv4 and IPv6 addresses.
func benignNet(t *testing.T) (cli, srv *testnet.NS) {
	t.Helper()
	requireRoot(t)
	privtest.RequireCmd(t, "ping")
	n := testnet.New(t)
	cli, srv = n.NS("cli"), n.NS("srv")
	n.Link(cli, "eth0", "10.239.1.1/24", srv, "eth0", "10.239.1.2/24")
	cli.Addr("eth0", "fd39:1::1/64")
	srv.Addr("eth0", "fd39:1::2/64")
	return cli, srv
}

const benignControlPort = 31339

// healthyTraffic runs the traffic of internal/healthy, then one UDP
// datagram to a port nobody listens on: that one is a real drop, and
// shows that pktdrop was watching.
func healthyTraffic(t *testing.T, cli, srv *testnet.NS, d time.Duration) func() error {
	return func() error {
		st, err := healthy.Run(context.Background(), healthy.Config{Client: cli.Name(), Server: srv.Name(),
			Server4: "10.239.1.2", Server6: "fd39:1::2", Port: 7300, Duration: d})
		if err != nil {
			return err
		}
		t.Logf("healthy traffic: %s", st)
		for _, f := range st.Failed {
			t.Errorf("the healthy traffic failed itself: %s", f)
		}
		if st.PingRuns == 0 || st.Short == 0 || st.KeepAlive == 0 || st.UDP == 0 {
			t.Errorf("some healthy traffic did not run: %s", st)
		}
		return cli.UDP("10.239.1.2", benignControlPort, []byte("control"))
	}
}

// isControl: the datagram to the closed port, a NO_SOCKET drop.
func isControl(r report.Report) bool {
	return r.Proto == "udp" && r.Dport == benignControlPort
}

// watchBoth runs one pktdrop per namespace (--netns keeps it parallel
// with other tests) around trigger, and returns the reports of both.
func watchBoth(t *testing.T, cli, srv *testnet.NS, trigger func() error, extra ...string) (cliRes, srvRes result) {
	t.Helper()
	pc := start(t, append([]string{"watch", "-o", "json", "--netns", cli.Name()}, extra...)...)
	ps := start(t, append([]string{"watch", "-o", "json", "--netns", srv.Name()}, extra...)...)
	if err := trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	ps.waitReports(1, reportTimeout) // the control drop, at the latest
	time.Sleep(quietWait)
	return pc.stop(syscall.SIGINT), ps.stop(syscall.SIGINT)
}

// TestBenignNotReported: working pings (v4 and v6, the real ping
// binary), short TCP connections closed cleanly by both sides, a
// keep-alive TCP exchange and UDP request/response make no report by
// default; the datagram to a closed port after them still does.
func TestBenignNotReported(t *testing.T) {
	t.Parallel()
	cli, srv := benignNet(t)
	cr, sr := watchBoth(t, cli, srv, healthyTraffic(t, cli, srv, 4*time.Second))
	for _, r := range append(cr.Reports, sr.Reports...) {
		if !isControl(r) {
			t.Errorf("healthy traffic reported as a drop: %s", brief([]report.Report{r}))
		}
		if r.Benign {
			t.Errorf("a benign free was reported without --all: %s", brief([]report.Report{r}))
		}
	}
	var control []report.Report
	for _, r := range sr.Reports {
		if isControl(r) {
			control = append(control, r)
		}
	}
	if len(control) != 1 || control[0].Cause != "no_socket" {
		t.Errorf("want the datagram to the closed port as one no_socket drop, got %s", brief(control))
	}
	// The benign frees are counted apart in the summary.
	if !strings.Contains(cr.Stderr, "benign frees (not drops)") {
		t.Errorf("client summary does not count the benign frees (the echo replies):\n%s", cr.Stderr)
	}
}

// TestBenignAll: with --all the same traffic shows its benign frees,
// each labelled with the fact that makes it benign.
func TestBenignAll(t *testing.T) {
	t.Parallel()
	cli, srv := benignNet(t)
	cr, sr := watchBoth(t, cli, srv, healthyTraffic(t, cli, srv, 3*time.Second), "--all")
	echo := map[string]int{}
	for _, r := range append(cr.Reports, sr.Reports...) {
		if isControl(r) {
			if r.Benign {
				t.Errorf("the datagram to a closed port was called benign: %s", brief([]report.Report{r}))
			}
			continue
		}
		if !r.Benign || r.BenignWhy == "" || r.Cause != "benign" || r.Hint != "" {
			t.Errorf("healthy traffic reported without a benign label and its reason: %s", brief([]report.Report{r}))
			continue
		}
		// Echo replies freed by ICMP itself (other raw sockets' copies,
		// unread when their ping exits, are purged with the socket).
		if ((r.Proto == "icmp" && r.ICMPType == 0) || (r.Proto == "icmp6" && r.ICMPType == 129)) && r.Reason != "QUEUE_PURGE" {
			if r.NetnsName != cli.Name() || !strings.Contains(r.BenignWhy, "raw") {
				t.Errorf("echo reply: want netns %s and the raw socket as the reason: %s", cli.Name(), brief([]report.Report{r}))
			}
			echo[r.Proto]++
		}
		t.Logf("benign: %s %s:%d > %s:%d [%s] at %s: %s", r.Proto, r.Src, r.Sport, r.Dst, r.Dport, r.TCPFlags, r.Location, r.BenignWhy)
	}
	// ping (root, in a namespace whose ping_group_range allows no ping
	// sockets) reads replies on a raw socket: on every kernel each reply
	// is then freed by ICMP, which found no ping socket.
	if echo["icmp"] == 0 || echo["icmp6"] == 0 {
		t.Errorf("want benign echo replies of both families, got %v", echo)
	}
}

// TestBenignText: the text output says benign and why.
func TestBenignText(t *testing.T) {
	t.Parallel()
	cli, srv := benignNet(t)
	p := start(t, "watch", "--all", "--netns", cli.Name(), "--proto", "icmp")
	ok, err := cli.Ping("10.239.1.2", 3, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("ping: %v %v", ok, err)
	}
	_ = srv
	deadline := time.Now().Add(reportTimeout)
	for !strings.Contains(p.stdout.String(), "benign:") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res := p.stop(syscall.SIGINT)
	t.Logf("pktdrop watch --all:\n%s", res.Stdout)
	if !strings.Contains(res.Stdout, "BENIGN icmp 10.239.1.2 > 10.239.1.1 echo-reply") ||
		!strings.Contains(res.Stdout, "cause  benign: echo reply delivered to a raw ICMP socket") {
		t.Errorf("text output lacks the benign echo reply and why:\n%s", res.Stdout)
	}
	if strings.Contains(res.Stdout, " DROP ") || strings.Contains(res.Stdout, "fix ") {
		t.Errorf("a working ping printed a drop or a fix:\n%s", res.Stdout)
	}
}

// TestBenignFINToTimeWait: the end of an iperf3-like flow. The client
// closes first and its orphaned socket waits in FIN-WAIT-2 (a timewait
// socket); the server's FIN comes later, is acknowledged by that socket
// and freed in tcp_v4_rcv without a reason. The server listened all
// along: this is no "nothing listens" drop.
func TestBenignFINToTimeWait(t *testing.T) {
	t.Parallel()
	cli, srv := benignNet(t)
	var l net.Listener
	if err := srv.Do(func() (err error) { l, err = net.Listen("tcp", ":7400"); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = c.Read(make([]byte, 100))
				time.Sleep(300 * time.Millisecond) // the client has closed by now
				_ = c.Close()
			}()
		}
	}()
	p := start(t, "watch", "-o", "json", "--all", "--netns", cli.Name(), "--proto", "tcp")
	for i := 0; i < 3; i++ {
		var c net.Conn
		if err := cli.Do(func() (err error) { c, err = net.Dial("tcp", "10.239.1.2:7400"); return err }); err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("data"))
		_ = c.Close()
	}
	time.Sleep(time.Second)
	res := p.stop(syscall.SIGINT)
	fins := 0
	for _, r := range res.Reports {
		if !r.Benign {
			t.Errorf("the end of a clean flow reported as a drop: %s", brief([]report.Report{r}))
			continue
		}
		if strings.Contains(r.TCPFlags, "FIN") && r.Sport == 7400 && function(r.Location) == "tcp_v4_rcv" {
			fins++
			t.Logf("benign: %s %s", r.Location, r.BenignWhy)
		}
	}
	// Before 5.17 the free has no reason, and the evidence is the
	// timewait socket sock_diag finds; later kernels pass the socket.
	if fins == 0 {
		t.Errorf("want the server's FINs freed by tcp_v4_rcv as benign, got %s", brief(res.Reports))
	}
}
