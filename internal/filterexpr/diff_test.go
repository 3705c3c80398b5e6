package filterexpr

import (
	"fmt"
	"math/rand"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// handExprs cover each primitive, qualifier, operator and the parsing
// rules (precedence, inheritance) at least once.
var handExprs = []string{
	"ip", "ip6", "tcp", "udp", "sctp", "icmp", "icmp6",
	"host 10.0.0.1", "src host 10.0.0.1", "dst host 10.0.0.2", "src or dst host 10.1.2.3", "src and dst host 10.0.0.1",
	"host fd00::1", "src host fd00::2", "dst host 2001:db8::5", "ip host 10.0.0.1", "ip6 host fd00::1",
	"net 10.0.0.0/8", "net 10.0.0.0/24", "src net 192.168.0.0/16", "dst net 10.1.0.0/16", "net 10.0.0.0 mask 255.0.0.0",
	"net 10.1", "net 10", "net 172.16.5.4", "net fd00::/16", "src net fd00::/8", "dst net 2001:db8::/32", "net fe80::/10",
	"net 0.0.0.0/0", "net ::/0", "ip6 net fd00::/8",
	"port 80", "port 0", "src port 53", "dst port 443", "tcp port 80", "udp port 53", "sctp port 2000", "tcp dst port 80",
	"udp src port 53", "src or dst port 22", "src and dst port 80",
	"portrange 1000-2000", "portrange 2000-1000", "src portrange 0-100", "dst portrange 443-8080", "tcp portrange 1-1024",
	"udp dst portrange 53-53", "sctp portrange 0-1",
	"proto 6", "proto 17", "proto 47", "ip proto 1", "ip proto 58", "ip6 proto 58", "ip6 proto 1", "proto \\tcp",
	"ip proto \\udp", "ip6 proto \\ipv6-icmp", "proto \\gre", "proto 132",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] == tcp-syn",
	"tcp[13] & 2 != 0", "tcp[13] & 4 != 0", "tcp[13] & 1 != 0", "tcp[13] = 18", "tcp[13] > 16", "tcp[13] >= 16",
	"tcp[13] < 3", "tcp[13] <= 0", "(tcp[13] & 2) != 0", "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0",
	"tcp[tcpflags] & tcp-rst == 0", "tcp[13:1] & tcp-push != 0", "0 != tcp[13] & 2", "tcp[13] & 0x12 == 0x12",
	"tcp[tcpflags] & (tcp-ece|tcp-cwr) != 0", "tcp[13] & 300 == 256", "tcp[13] < 1000", "tcp[13] != 2",
	"icmp[icmptype] == icmp-echo", "icmp[icmptype] != icmp-echo", "icmp[0] == 0", "icmp[icmpcode] == 1",
	"icmp[icmptype] == icmp-unreach and icmp[icmpcode] == 3", "icmp6[icmp6type] == 128", "icmp6[0] == icmp6-echoreply",
	"icmp6[icmp6code] == 0", "icmp[0] > 5",
	"icmp and host 10.42.1.7", "udp or icmp and host 10.0.0.1", "udp or (icmp and host 10.0.0.1)",
	"not tcp and host 10.0.0.1", "not (tcp and host 10.0.0.1)", "! udp", "!tcp && !udp", "tcp || udp && port 53",
	"host 10.0.0.1 or 10.0.0.2", "host 10.0.0.1 and not 10.0.0.2", "port 80 or 443", "tcp dst port 80 or 443",
	"src host 10.0.0.1 or 10.1.2.3 and dst port 53", "net 10.0.0.0/8 or 192.168.1.0/24", "not not ip",
	"(host fd00::1 or 10.0.0.1) and (port 80 or 53)", "ip and not tcp[13] & 2 != 0", "not tcp[13] & 2 != 0",
	"port 53 and (udp or sctp)", "ip6 and (icmp6 or tcp dst port 443)", "host 10.0.0.1 or fd00::1",
	"src 10.0.0.1", "dst fd00::2 and udp", "ip and ip6", "tcp and udp", "portrange 1000-2000 and not port 1500",
	"tcp and src port 0", "udp dst port 65535 or tcp[13] == 0x29",
}

// tcpdumpCompile returns libpcap's program for expr on Ethernet.
func tcpdumpCompile(expr string) ([]bpf.Instruction, error) {
	out, err := exec.Command("tcpdump", "-y", "EN10MB", "-dd", expr).CombinedOutput()
	if err != nil && strings.Contains(string(out), "expression rejects all packets") {
		// The optimizer proved it always false and refuses: take the
		// unoptimized program, which still says so packet by packet.
		out, err = exec.Command("tcpdump", "-O", "-y", "EN10MB", "-dd", expr).CombinedOutput()
	}
	if err != nil {
		return nil, fmt.Errorf("tcpdump -dd %q: %v: %s", expr, err, out)
	}
	var raw []bpf.RawInstruction
	re := regexp.MustCompile(`\{ (0x[0-9a-f]+), (\d+), (\d+), (0x[0-9a-f]+) \}`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		op, _ := strconv.ParseUint(m[1], 0, 16)
		jt, _ := strconv.ParseUint(m[2], 10, 8)
		jf, _ := strconv.ParseUint(m[3], 10, 8)
		k, _ := strconv.ParseUint(m[4], 0, 32)
		raw = append(raw, bpf.RawInstruction{Op: uint16(op), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)})
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("tcpdump -dd %q printed no program: %s", expr, out)
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("tcpdump -dd %q: program has instructions x/net/bpf cannot run", expr)
	}
	return insns, nil
}

// TestDifferentialLibpcap compiles each expression with libpcap (tcpdump
// -dd) and with filterexpr, and runs both on every test packet: libpcap's
// program in x/net/bpf's VM on the frame, ours in the Go mirror of the
// kernel evaluator on the tuple the kernel would parse from it.
func TestDifferentialLibpcap(t *testing.T) {
	privtest.RequireCmd(t, "tcpdump")
	r := rand.New(rand.NewSource(14))
	exprs := append([]string{}, handExprs...)
	seen := map[string]bool{}
	for _, e := range exprs {
		seen[e] = true
	}
	for len(exprs) < len(handExprs)+600 {
		e := randExpr(r, 3)
		if !seen[e] {
			seen[e] = true
			exprs = append(exprs, e)
		}
	}
	packets := genPackets(r, 400)

	type verdicts struct {
		expr string
		prog []bpf.Instruction
		err  error
	}
	res := make([]verdicts, len(exprs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, e := range exprs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			prog, err := tcpdumpCompile(e)
			res[i] = verdicts{e, prog, err}
		}()
	}
	wg.Wait()

	disagree, runs, matched := 0, 0, 0
	for _, v := range res {
		if v.err != nil {
			t.Errorf("libpcap: %v", v.err)
			continue
		}
		ours, err := Parse(v.expr)
		if err != nil {
			t.Errorf("filterexpr rejects what libpcap takes: %v", err)
			continue
		}
		vm, err := bpf.NewVM(v.prog)
		if err != nil {
			t.Errorf("x/net/bpf: %q: %v", v.expr, err)
			continue
		}
		for _, p := range packets {
			n, err := vm.Run(p.frame)
			if err != nil {
				t.Fatalf("x/net/bpf run %q: %v", v.expr, err)
			}
			tu, ok := tuple(p.frame)
			if !ok {
				t.Fatal("test packet is not IP")
			}
			want, got := n > 0, ours.Match(tu)
			runs++
			if want {
				matched++
			}
			if want != got {
				disagree++
				if disagree <= 20 {
					t.Errorf("%q on %s: libpcap %v, pktdrop %v", v.expr, describePkt(p), want, got)
				}
			}
		}
	}
	t.Logf("differential test: %d expressions (%d hand-written, %d random) x %d packets = %d verdicts, %d matches, %d disagreements",
		len(exprs), len(handExprs), len(exprs)-len(handExprs), len(packets), runs, matched, disagree)
	if disagree > 0 {
		t.Errorf("%d disagreements with libpcap", disagree)
	}
	if matched == 0 || matched == runs {
		t.Errorf("degenerate test: %d of %d verdicts match", matched, runs)
	}
}

func describePkt(p *pkt) string {
	return fmt.Sprintf("proto %d %s:%d > %s:%d flags %#x icmp %d/%d opts=%v mf=%v", p.proto, p.src, p.sport, p.dst, p.dport,
		p.flags, p.itype, p.icode, p.ipOptions, p.moreFrags)
}

// randExpr draws an expression from the supported grammar.
func randExpr(r *rand.Rand, depth int) string {
	if depth == 0 || r.Intn(3) == 0 {
		return randPrimitive(r)
	}
	a, b := randExpr(r, depth-1), randExpr(r, depth-1)
	ops := []string{"and", "or", "&&", "||"}
	op := ops[r.Intn(len(ops))]
	switch r.Intn(5) {
	case 0:
		return "not " + a
	case 1:
		return "(" + a + ") " + op + " " + b
	case 2:
		return "! (" + a + " " + op + " " + b + ")"
	}
	return a + " " + op + " " + b
}

func randPrimitive(r *rand.Rand) string {
	pick := func(s ...string) string { return s[r.Intn(len(s))] }
	addr := func() string {
		if r.Intn(2) == 0 {
			return pool4[r.Intn(len(pool4))]
		}
		return pool6[r.Intn(len(pool6))]
	}
	dir := func() string { return pick("", "", "src ", "dst ", "src or dst ", "src and dst ") }
	port := func() string { return strconv.Itoa(int(poolPort[r.Intn(len(poolPort))])) }
	switch r.Intn(12) {
	case 0:
		return pick("ip", "ip6", "tcp", "udp", "sctp", "icmp", "icmp6")
	case 1:
		s := dir() + "host " + addr()
		if r.Intn(3) == 0 {
			s += " or " + addr() // inherited qualifiers
		}
		return s
	case 2:
		return dir() + "net " + pick("10.0.0.0/8", "10.0.0.0/31", "10.1.2.0/24", "192.168.0.0/16", "172.16.0.0/12",
			"fd00::/8", "fd00::/127", "2001:db8::/32", "fe80::/64", "10.0.0.0 mask 255.255.255.0", "10.1", "0.0.0.0/0")
	case 3:
		s := pick("", "", "tcp ", "udp ", "sctp ") + dir() + "port " + port()
		if r.Intn(3) == 0 {
			s += pick(" or ", " and not ") + port()
		}
		return s
	case 4:
		a, b := port(), port()
		return pick("", "tcp ", "udp ", "sctp ") + dir() + "portrange " + a + "-" + b
	case 5:
		return pick("", "ip ", "ip6 ") + "proto " + pick("1", "6", "17", "47", "58", "132", "\\tcp", "\\udp")
	case 6, 7:
		flags := []string{"tcp-fin", "tcp-syn", "tcp-rst", "tcp-push", "tcp-ack", "tcp-urg", "tcp-ece", "tcp-cwr", "2", "0x12"}
		f := func() string { return flags[r.Intn(len(flags))] }
		mask := f()
		if r.Intn(2) == 0 {
			mask = "(" + f() + "|" + f() + ")"
		}
		lhs := pick("tcp[tcpflags]", "tcp[13]")
		switch r.Intn(4) {
		case 0:
			return lhs + " & " + mask + " != 0"
		case 1:
			return lhs + " & " + mask + " == " + f()
		case 2:
			return lhs + " " + pick("==", "!=", "<", "<=", ">", ">=") + " " + strconv.Itoa(r.Intn(260))
		}
		return "(" + lhs + " & " + mask + ") = 0"
	case 8:
		return pick("icmp[icmptype]", "icmp[0]", "icmp[icmpcode]", "icmp[1]") + " " + pick("==", "!=", ">") + " " +
			pick("icmp-echo", "icmp-echoreply", "icmp-unreach", "3", "1", "0")
	case 9:
		return pick("icmp6[icmp6type]", "icmp6[0]", "icmp6[icmp6code]") + " " + pick("==", "!=", "<") + " " +
			pick("128", "129", "icmp6-echo", "1", "0")
	case 10:
		return pick("not ", "! ") + randPrimitive(r)
	}
	return strings.TrimSpace(pick("tcp", "udp") + " " + dir() + "port " + port())
}
