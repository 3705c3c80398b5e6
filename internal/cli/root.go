// Package cli defines pktdrop's commands. Commands only parse flags into
// option structs and call internal packages; output goes to the writers
// given to NewRoot so that tests can capture it.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pktdrop/pktdrop/internal/filter"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "pktdrop",
		Short: "Live packet drop tracer: where the kernel dropped a packet, why, and what to change",
		Long: `pktdrop watches the kernel drop packets, live, and tells for each one where it died
(netns, device, netfilter hook, kernel function), why in plain words, the path it
took, and what to change. It only reads the system.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &filter.UsageError{Msg: err.Error()}
	})
	root.AddCommand(newWatch(stdout, stderr), newTrace(stdout, stderr), newProbes(stdout), newServe(stdout, stderr))
	return root
}

// ExitCode maps an error to the process exit status: 2 for bad input,
// 1 for everything else.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var u *filter.UsageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

// noArgs is cobra.NoArgs reporting a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &filter.UsageError{Msg: err.Error()}
	}
	return nil
}

// Message is the one line printed for err.
func Message(err error) string {
	return fmt.Sprintf("pktdrop: %v", err)
}
