// Package bench is pktdrop's benchmark and soak driver (`make bench`,
// `make soak`): it builds two network namespaces joined by a veth pair,
// generates the traffic itself, runs the real pktdrop binary against it and
// prints per-run figures and one summary line.
//
// Everything happens inside namespaces this package creates, between
// private addresses on a veth pair that leads nowhere else.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The flow runs between these two addresses, one per namespace. They are
// on a /30 of their own: nothing else on the host can route there.
const (
	addrA     = "10.213.77.1"
	addrB     = "10.213.77.2"
	addrA6    = "fd13:77::1" // the false-drops traffic pings over IPv6 too
	addrB6    = "fd13:77::2"
	tcpPort   = 5201
	stormPort = 9999
	// nomatchHost is in TEST-NET-1: no packet of the benchmark carries it.
	nomatchHost = "192.0.2.1"
)

// Topo is the pair of namespaces: A sends, B receives.
type Topo struct {
	A, B string // namespace names under /var/run/netns

	mu     sync.Mutex
	closed bool
}

// cmdTimeout bounds every helper command so a wedged tool cannot hang the
// benchmark past its time budget.
const cmdTimeout = 20 * time.Second

func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func runIn(ns string, args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// NewTopo creates the namespaces "pdbench-<random>-a" and "-b" with a veth
// pair between them. The random part keeps concurrent runs (and leftovers
// of a killed run) apart.
func NewTopo() (*Topo, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	prefix := "pdbench-" + hex.EncodeToString(b[:])
	t := &Topo{A: prefix + "-a", B: prefix + "-b"}
	steps := [][]string{
		{"ip", "netns", "add", t.A},
		{"ip", "netns", "add", t.B},
		{"ip", "-n", t.A, "link", "set", "lo", "up"},
		{"ip", "-n", t.B, "link", "set", "lo", "up"},
		{"ip", "-n", t.A, "link", "add", "pdb0", "type", "veth", "peer", "name", "pdb1", "netns", t.B},
		{"ip", "-n", t.A, "addr", "add", addrA + "/30", "dev", "pdb0"},
		{"ip", "-n", t.B, "addr", "add", addrB + "/30", "dev", "pdb1"},
		{"ip", "-n", t.A, "addr", "add", addrA6 + "/64", "dev", "pdb0", "nodad"},
		{"ip", "-n", t.B, "addr", "add", addrB6 + "/64", "dev", "pdb1", "nodad"},
		{"ip", "-n", t.A, "link", "set", "pdb0", "up"},
		{"ip", "-n", t.B, "link", "set", "pdb1", "up"},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			t.Close()
			return nil, err
		}
	}
	// Fixed neighbour entries: the storm must not depend on ARP answers.
	if err := t.staticNeigh(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Topo) staticNeigh() error {
	mac := func(ns, dev string) (string, error) {
		out, err := run("ip", "-n", ns, "-j", "link", "show", dev)
		if err != nil {
			return "", err
		}
		var l []struct {
			Address string `json:"address"`
		}
		if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) == 0 {
			return "", fmt.Errorf("read MAC of %s in %s: %v", dev, ns, err)
		}
		return l[0].Address, nil
	}
	ma, err := mac(t.A, "pdb0")
	if err != nil {
		return err
	}
	mb, err := mac(t.B, "pdb1")
	if err != nil {
		return err
	}
	if _, err := run("ip", "-n", t.A, "neigh", "replace", addrB, "lladdr", mb, "dev", "pdb0", "nud", "permanent"); err != nil {
		return err
	}
	_, err = run("ip", "-n", t.B, "neigh", "replace", addrA, "lladdr", ma, "dev", "pdb1", "nud", "permanent")
	return err
}

// Close deletes both namespaces (and with them the veth pair and any
// nftables table). Safe to call more than once and from a signal handler.
func (t *Topo) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for _, ns := range []string{t.A, t.B} {
		_, _ = run("ip", "netns", "delete", ns)
	}
}

// Path is the nsfs bind mount of a namespace.
func Path(ns string) string { return filepath.Join("/var/run/netns", ns) }

// InstallDrop adds, in B, an nftables table that drops the storm's UDP
// datagrams in the input hook and counts them: that counter is the
// kernel's own count of drops. It is installed only for the storm phases
// so that the throughput runs see a namespace without netfilter hooks,
// as pktdrop finds most namespaces.
func (t *Topo) InstallDrop() error {
	rules := fmt.Sprintf(`table inet pdbench {
	counter storm { }
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport %d counter name "storm" drop
	}
}
`, stormPort)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", "netns", "exec", t.B, "nft", "-f", "-")
	c.Stdin = strings.NewReader(rules)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Dropped reads the DROP rule's packet counter.
func (t *Topo) Dropped() (uint64, error) {
	out, err := runIn(t.B, "nft", "-j", "list", "counter", "inet", "pdbench", "storm")
	if err != nil {
		return 0, err
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return 0, fmt.Errorf("parse nft counter: %w", err)
	}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			return o.Counter.Packets, nil
		}
	}
	return 0, fmt.Errorf("nft printed no counter: %s", out)
}

// In runs fn on an OS thread that has joined namespace ns. Sockets keep
// the namespace they were created in, so fn only needs to create them;
// they can be used from any goroutine afterwards. If the thread cannot go
// back to its namespace it stays locked and the runtime discards it.
func In(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(Path(ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
