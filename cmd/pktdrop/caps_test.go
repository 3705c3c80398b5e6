package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// TestMissingCapabilities runs pktdrop with capabilities taken away
// (capsh drops them from the bounding set, so root's exec does not get
// them) and wants each one named, with what to grant.
func TestMissingCapabilities(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "capsh")
	cases := []struct {
		drop  string // capsh --drop list
		named string
		fatal bool
	}{
		// CAP_SYS_ADMIN would stand in for CAP_BPF and CAP_PERFMON.
		{"cap_bpf,cap_sys_admin", "missing CAP_BPF", true},
		{"cap_perfmon,cap_sys_admin", "missing CAP_PERFMON", true},
		{"cap_net_admin", "missing CAP_NET_ADMIN", true},
		{"cap_sys_admin", "missing CAP_SYS_ADMIN", false},
		{"cap_syslog", "missing CAP_SYSLOG", false},
		{"cap_sys_ptrace", "missing CAP_SYS_PTRACE", false},
	}
	for _, c := range cases {
		t.Run(c.drop, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("capsh", "--drop="+c.drop, "--", "-c",
				`exec "$0" watch --duration 1s --proto icmp --host 10.78.0.1`, bin)
			var stdout, stderr lockedBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := exitCode(err)
			out := stderr.String()
			if !strings.Contains(out, c.named) || !strings.Contains(out, "securityContext: {capabilities: {add: [") {
				t.Errorf("without %s: stderr does not say %q and what to grant:\n%s", c.drop, c.named, out)
			}
			if c.fatal && code != 1 {
				t.Errorf("without %s: exit %d, want 1; stderr:\n%s", c.drop, code, out)
			}
			if !c.fatal && code != 0 {
				t.Errorf("without %s: exit %d, want 0 (it runs with less); stderr:\n%s", c.drop, code, out)
			}
			t.Logf("without %s: %s", c.drop, strings.TrimSpace(strings.Split(out, "\n")[0]))
		})
	}
}
