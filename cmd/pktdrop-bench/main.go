// Command pktdrop-bench measures pktdrop's overhead, event rate, losses,
// memory and attach time (`make bench`), or soaks it under a drop storm
// (`make soak`). It needs root: it builds its own network namespaces and
// runs the pktdrop binary given by -pktdrop against traffic it generates.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pktdrop/pktdrop/internal/bench"
)

func main() {
	cfg := bench.Default()
	flag.StringVar(&cfg.Pktdrop, "pktdrop", "./pktdrop", "pktdrop binary to measure")
	flag.DurationVar(&cfg.Soak, "soak", 0, "soak for this long instead of benchmarking (e.g. 10m)")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "alternating throughput rounds")
	flag.DurationVar(&cfg.Flow, "flow", cfg.Flow, "TCP measurement per run")
	flag.DurationVar(&cfg.Storm, "storm", cfg.Storm, "unthrottled storm duration")
	flag.DurationVar(&cfg.Paced, "paced", cfg.Paced, "paced storm duration")
	flag.Float64Var(&cfg.Rate, "rate", cfg.Rate, "paced storm rate, drops/s")
	flag.IntVar(&cfg.Senders, "senders", cfg.Senders, "storm sender sockets")
	flag.IntVar(&cfg.AttachRuns, "attach-runs", cfg.AttachRuns, "attach time samples")
	flag.StringVar(&cfg.Phases, "phases", "", "run only these phases: attach,overhead,falsedrops,cost,storm,agent (default all)")
	flag.Parse()
	if cfg.Soak > 0 {
		cfg.Budget = cfg.Soak + 2*time.Minute
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// Kill pktdrop first so nothing holds the namespaces, then let
		// Run's deferred cleanup delete them.
		bench.Cleanup()
		cancel()
		<-sigs
		os.Exit(130) // second signal: give up on cleanup
	}()
	err := bench.Run(ctx, cfg, os.Stdout)
	bench.Cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktdrop-bench:", err)
		os.Exit(1)
	}
}
