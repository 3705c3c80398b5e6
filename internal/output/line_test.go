package output

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The pcapng comment carries the very line `-o json` writes.
func TestAppendJSONIsTheJSONLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		r := randReport(rng)
		want := bytes.TrimSuffix(stdJSON(t, r), []byte("\n"))
		if got := AppendJSON([]byte("x"), r); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("report %d:\n got %s\nwant x%s", i, got, want)
		}
	}
}
