package cli

import (
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/metrics"
	"github.com/pktdrop/pktdrop/internal/session"
)

// agentRingBuf is serve's default --ringbuf-size.
const agentRingBuf = 4 << 20

func newServe(stdout, stderr io.Writer) *cobra.Command {
	var o session.Options
	var force []string
	var m metrics.Options
	var logDrops bool
	cmd := &cobra.Command{
		Use:   "serve [pcap-filter expression]",
		Short: "Run as a node agent: drop metrics for Prometheus, /healthz and /readyz, until stopped",
		Long: `serve is pktdrop for a DaemonSet: it watches drops like watch, with the same
filters, and serves them as Prometheus metrics (pktdrop_drops_total by reason,
cause, netfilter hook and pod) on --listen, with /healthz and /readyz (ready once
every probe is attached). The number of drop series is capped (--max-series);
the series of namespaces that are gone expire after --series-ttl. With
--log-drops each drop is also written to stdout as a JSON line.

` + exprHelp,
		Example: `  pktdrop serve --listen :9750
  pktdrop serve --listen 127.0.0.1:9750 --log-drops --label iface`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Force, err = parseForce(force); err != nil {
				return err
			}
			if cmd.Flags().Changed("output") {
				return &filter.UsageError{Flag: "output", Value: o.Output, Msg: "serve writes JSON lines with --log-drops"}
			}
			o.Output = "none"
			if logDrops {
				o.Output = "json"
			}
			o.Command, o.Version = commandLine(), Version
			o.Expr = strings.Join(args, " ")
			m.Node, m.Version = os.Getenv("NODE_NAME"), Version
			a, err := metrics.Listen(m)
			if err != nil {
				return err
			}
			defer a.Close()
			o.Agent = a
			return session.Run(cmd.Context(), o, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	addSessionFlags(fs, &o, &force)
	_ = fs.MarkHidden("output")
	// An agent writes no output, so it drains the ring faster than watch
	// and needs less of it; 4 MiB less ring is 8 MiB less RSS (the ring is
	// mapped twice), which keeps the start-up peak under a 64 MiB limit.
	o.RingBufSize = agentRingBuf
	fs.Lookup("ringbuf-size").DefValue = strconv.Itoa(agentRingBuf)
	fs.StringVar(&m.Listen, "listen", ":9750", "address of the metrics server (host:port)")
	fs.IntVar(&m.MaxSeries, "max-series", 2000, "cap on pktdrop_drops_total series; beyond it drops count under pod=\"_other\"")
	fs.DurationVar(&m.SeriesTTL, "series-ttl", 10*time.Minute, "how long the series of a namespace that is gone stay after its last drop")
	fs.StringSliceVar(&m.Labels, "label", nil, "extra labels on pktdrop_drops_total: iface, table")
	fs.BoolVar(&logDrops, "log-drops", false, "also write each drop to stdout as a JSON line")
	return cmd
}
