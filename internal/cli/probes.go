package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/pktdrop/pktdrop/internal/probe"
	"github.com/pktdrop/pktdrop/internal/probes"
)

func newProbes(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "probes",
		Short: "Show which probe point this kernel lets pktdrop use, by which mechanism, or why not",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return probes.Run(stdout, probe.Config{Path: true})
		},
	}
}
