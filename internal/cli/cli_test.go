package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/cli"
	"github.com/pktdrop/pktdrop/internal/filter"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run executes the command tree as main does, without touching the
// system: every case here fails or stops before a probe is loaded.
func run(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := cli.NewRoot(&out, &errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestHelpGolden(t *testing.T) {
	for name, args := range map[string][]string{
		"root-help":   {"--help"},
		"watch-help":  {"watch", "--help"},
		"trace-help":  {"trace", "--help"},
		"probes-help": {"probes", "--help"},
		"serve-help":  {"serve", "--help"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := run(args...)
			if err != nil || errOut != "" {
				t.Fatalf("%v: error %v, stderr %q", args, err, errOut)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("pktdrop %s differs from %s (run with -update if intended):\n%s", strings.Join(args, " "), path, out)
			}
		})
	}
}

// The hidden testing flag must stay out of the help.
func TestHelpHidesProbeMechanism(t *testing.T) {
	for _, cmd := range []string{"watch", "trace"} {
		out, _, err := run(cmd, "--help")
		if err != nil || strings.Contains(out, "probe-mechanism") {
			t.Errorf("%s --help (err %v) shows --probe-mechanism:\n%s", cmd, err, out)
		}
	}
}

func TestExitCode(t *testing.T) {
	usage := &filter.UsageError{Flag: "proto", Value: "xyz", Msg: "want icmp, icmp6, tcp, udp, sctp or a number"}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"usage error", usage, 2},
		{"wrapped usage error", fmt.Errorf("parse filters: %w", usage), 2},
		{"runtime error", errors.New("load BPF objects: operation not permitted"), 1},
	} {
		if got := cli.ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode(%v) = %d; want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestMessage(t *testing.T) {
	usage := &filter.UsageError{Flag: "proto", Value: "xyz", Msg: "want icmp, icmp6, tcp,\nudp, sctp or a number"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{usage, `pktdrop: invalid --proto "xyz": want icmp, icmp6, tcp, udp, sctp or a number`},
		{errors.New("load BPF objects: operation not permitted"), "pktdrop: load BPF objects: operation not permitted"},
	} {
		if got := cli.Message(tc.err); got != tc.want {
			t.Errorf("Message = %q; want %q", got, tc.want)
		}
	}
}

// Bad flags exit 2 with one line naming the problem, as filter errors do.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "pktdrop: unknown flag: --bogus"},
		{[]string{"watch", "--bogus"}, "pktdrop: unknown flag: --bogus"},
		{[]string{"trace", "-x"}, "pktdrop: unknown shorthand flag: 'x' in -x"},
		{[]string{"watch", "--count", "many"}, `pktdrop: invalid argument "many" for "--count" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{[]string{"watch", "--duration", "5"}, `pktdrop: invalid argument "5" for "--duration" flag: time: missing unit in duration "5"`},
		{[]string{"watch", "--output"}, "pktdrop: flag needs an argument: --output"},
		{[]string{"watch", "--probe-mechanism", "nonsense"},
			"pktdrop: invalid --probe-mechanism \"nonsense\": want point=mechanism with a point from `pktdrop probes`"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := run(tc.args...)
			var ue *filter.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T %v is not a *filter.UsageError", err, err)
			}
			if code := cli.ExitCode(err); code != 2 {
				t.Errorf("exit code %d; want 2", code)
			}
			if got := cli.Message(err); got != tc.want {
				t.Errorf("message %q; want %q", got, tc.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	out, _, err := run("--version")
	if err != nil || out != "pktdrop version "+cli.Version+"\n" {
		t.Errorf("--version printed %q (err %v)", out, err)
	}
}
