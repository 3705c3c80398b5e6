package filterexpr

import (
	"errors"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/filter"
)

// FuzzParse: any input either compiles to a program whose jumps all go
// forward (so the kernel loop always ends) or is refused with one line.
func FuzzParse(f *testing.F) {
	for _, s := range handExprs {
		f.Add(s)
	}
	f.Add("(((")
	f.Add("tcp[13:1] & (1|2|4) >= 0x1ff")
	f.Add("src or dst net 10.1 mask 255.255.0.0")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var ue *filter.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T is not a *filter.UsageError: %v", err, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if strings.TrimSpace(s) != "" && !e.On() {
			t.Fatalf("%q compiled to nothing", s)
		}
		for i := 0; i < e.Len(); i++ {
			in := e.prog[i]
			for _, j := range []uint8{in.Jt, in.Jf} {
				if j != jumpTrue && j != jumpFalse && (int(j) <= i || int(j) >= e.Len()) {
					t.Fatalf("%q: instruction %d jumps to %d", s, i, j)
				}
			}
			if in.Op < uint8(opSrc) || in.Op > uint8(opICMPCode) {
				t.Fatalf("%q: instruction %d has op %d", s, i, in.Op)
			}
		}
		e.Match(&gen.PktdropPdTuple{Family: 4, Proto: 6})
	})
}
