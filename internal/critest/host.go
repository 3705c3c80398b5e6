package critest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// HostState is what of the host a runtime test could change: the host
// firewall, links, and mounts below /run and the test's own paths.
type HostState struct {
	Ruleset string
	Links   map[string]bool
	Mounts  map[string]bool
}

// Host reads the host's state now.
func Host(tb testing.TB) HostState {
	tb.Helper()
	out, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		tb.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	s := HostState{Ruleset: withoutPktdrop(string(out)), Links: map[string]bool{}, Mounts: map[string]bool{}}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		tb.Fatalf("ip link: %v", err)
	}
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			s.Links[name] = true
		}
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			s.Mounts[f[4]] = true
		}
	}
	return s
}

// Changes says what differs from before in the runtime's own things: its
// bridge and veths, cni- namespaces, mounts under its directory or
// containerd's; and the host ruleset as a whole.
func (r *Runtime) Changes(before, after HostState) []string {
	var out []string
	if before.Ruleset != after.Ruleset {
		out = append(out, "host ruleset changed:\n"+after.Ruleset)
	}
	for l := range after.Links {
		if !before.Links[l] && (l == r.Bridge || strings.HasPrefix(l, "veth")) {
			out = append(out, "link left behind: "+l)
		}
	}
	for m := range after.Mounts {
		if !before.Mounts[m] && (strings.HasPrefix(m, r.Dir) || strings.Contains(m, "/netns/cni-") ||
			strings.Contains(m, "containerd")) {
			out = append(out, "mount left behind: "+m)
		}
	}
	return out
}

// withoutPktdrop leaves out the trace tables of running pktdrops (other
// tests', with --rules): they belong to their process and go with it.
func withoutPktdrop(ruleset string) string {
	var b strings.Builder
	skip := false
	for _, l := range strings.SplitAfter(ruleset, "\n") {
		if strings.HasPrefix(l, "table ") && strings.Contains(l, " pktdrop_") {
			skip = true
		}
		if !skip {
			b.WriteString(l)
		}
		if skip && strings.HasPrefix(l, "}") {
			skip = false
		}
	}
	return b.String()
}
