package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/pktdrop/pktdrop/internal/critest"
	"github.com/pktdrop/pktdrop/internal/privtest"
)

// TestEngineContainer: a container run by podman, asked over its Docker
// Engine compatible API (as dockerd would be), is named `container web`
// rather than by the pause process in it.
func TestEngineContainer(t *testing.T) {
	requireRoot(t)
	before := critest.Host(t)
	pm, err := critest.StartPodman(t)
	if errors.Is(err, critest.ErrUnavailable) {
		privtest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pm.Stop()
		after := critest.Host(t)
		if before.Ruleset != after.Ruleset {
			t.Errorf("host ruleset changed:\n%s", after.Ruleset)
		}
	})
	if err := pm.LoadPause(); err != nil {
		t.Fatal(err)
	}
	if err := pm.Serve(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("web%d", rand.IntN(1e6))
	pid, err := pm.RunPause(name)
	if err != nil {
		t.Fatal(err)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	addr := fmt.Sprintf("10.80.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	for _, args := range [][]string{
		{"ip", "addr", "add", addr + "/32", "dev", "lo"},
		{"nft", "add table ip pdweb; add chain ip pdweb in { type filter hook input priority 0; policy accept; }; add rule ip pdweb in icmp type echo-request drop"},
	} {
		if out, err := exec.Command("nsenter", append([]string{"--net=" + netns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v in the container: %v: %s", args, err, out)
		}
	}
	ping := func() error {
		_ = exec.Command("nsenter", "--net="+netns, "ping", "-c", "1", "-W", "1", addr).Run()
		return nil
	}
	res := watch(t, ping, 1, "--engine-socket", pm.Socket, "--proto", "icmp", "--dst", addr)
	if r := find(res.Reports, addr); r == nil || r.NetnsName != "container "+name || r.Pod != "" {
		t.Errorf("drop in podman container %s not named `container %s`:\n%s\nstderr:\n%s", name, name, brief(res.Reports), res.Stderr)
	}
}
