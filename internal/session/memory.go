package session

import (
	"math"
	"os"
	"runtime/debug"
)

// startupHeapLimit is the Go heap's soft limit while the probes load. An
// agent runs under a memory limit that must hold its whole-lifetime peak,
// and that peak is start-up: the BPF object and the kernel's BTF are
// decoded then, most of it garbage a moment later. Under the default GC
// goal (twice the live heap) the garbage stays mapped until the next
// cycle: the limit makes the GC collect it sooner, at some CPU during
// start-up only.
const startupHeapLimit = 32 << 20

// limitStartup sets the start-up limit and returns what lifts it. A
// GOMEMLIMIT the user set is left alone.
func limitStartup() (lift func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	debug.SetMemoryLimit(startupHeapLimit)
	return func() { debug.SetMemoryLimit(math.MaxInt64) }
}
