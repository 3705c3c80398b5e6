package filterexpr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/privtest"
)

// longExpr compiles to 51 of the 64 instructions.
func longExpr() string {
	hosts := "host 10.0.0.1"
	for i := 1; i <= 13; i++ {
		hosts += fmt.Sprintf(" or 10.231.9.%d", i)
	}
	return "(" + hosts + " or net fd00::/8) and (udp dst port 1 or 2 or 3 or 4 or 5 or 6) and not tcp[13] & 4 != 0 " +
		"and not (icmp or icmp6) and portrange 1-65535"
}

// TestVerifierCost loads the busiest path program (netif_receive_skb,
// which checks the filters at several places) and the drop program with
// no expression, a five-term one and a 51-instruction one, and holds the
// verifier's work to a bound that grows with the program's length, not
// with the number of paths through it.
func TestVerifierCost(t *testing.T) {
	privtest.Require(t, "loads BPF programs")
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	if e, _ := Parse(longExpr()); e.Len() != 51 {
		t.Fatalf("long expression has %d instructions", e.Len())
	}
	processed := regexp.MustCompile(`processed (\d+) insns`)
	for _, prog := range []string{"tpb_netif_receive_skb", "tp_kfree_skb"} {
		var base int
		for _, s := range []string{"", "tcp and src host 192.0.2.1 and dst host 10.213.77.2 and src port 1 and dst port 5201", longExpr()} {
			spec, err := gen.LoadPktdrop()
			if err != nil {
				t.Fatal(err)
			}
			e, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range e.Constants() {
				if err := spec.Variables[k].Set(v); err != nil {
					t.Fatal(err)
				}
			}
			one := &ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types,
				Programs: map[string]*ebpf.ProgramSpec{prog: spec.Programs[prog]}}
			coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
			var ve *ebpf.VerifierError
			if errors.As(err, &ve) {
				t.Fatalf("%s with %d instructions: %v", prog, e.Len(), strings.Join(ve.Log[max(0, len(ve.Log)-20):], "\n"))
			}
			if err != nil {
				t.Fatalf("%s: %v", prog, err)
			}
			m := processed.FindStringSubmatch(coll.Programs[prog].VerifierLog)
			coll.Close()
			if m == nil {
				t.Fatalf("no statistics in the verifier log")
			}
			n, _ := strconv.Atoi(m[1])
			if s == "" {
				base = n
			}
			t.Logf("%s, expression of %d instructions: verifier processed %d instructions", prog, e.Len(), n)
			// Measured on 6.18: about 1,500 per test for netif_receive_skb.
			if limit := base + 4000*e.Len(); n > limit {
				t.Errorf("%s: %d instructions processed for %d tests; want at most %d", prog, n, e.Len(), limit)
			}
		}
	}
}
