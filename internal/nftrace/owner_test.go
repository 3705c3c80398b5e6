package nftrace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Kernels before 5.12 have no NFT_TABLE_F_OWNER, and Start must refuse them
// rather than install a table a killed process would leave behind. Which of
// the two outcomes is right therefore depends on the running kernel, so the
// privileged tests ask uname instead of assuming the host's kernel (the VM
// suite runs them on 5.10 too).
var kernelRelease = sync.OnceValues(func() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
})

// ownerFlagExpected reports whether the running kernel (uname release, e.g.
// "5.10.0-32-amd64" or "6.12.95+deb12-amd64") is at least 5.12, and the
// release for messages.
func ownerFlagExpected(t *testing.T) (bool, string) {
	t.Helper()
	rel, err := kernelRelease()
	if err != nil {
		t.Fatalf("uname: %v", err)
	}
	ok, err := releaseHasOwnerFlag(rel)
	if err != nil {
		t.Fatal(err)
	}
	return ok, rel
}

// releaseHasOwnerFlag reports whether a uname release is 5.12 or later.
// Only major.minor count: distribution suffixes vary.
func releaseHasOwnerFlag(rel string) (bool, error) {
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return false, fmt.Errorf("kernel release %q: %w", rel, err)
	}
	return major > 5 || major == 5 && minor >= 12, nil
}

func TestReleaseHasOwnerFlag(t *testing.T) {
	for rel, want := range map[string]bool{
		"4.19.0-27-amd64":     false,
		"5.10.0-32-amd64":     false,
		"5.11.22":             false,
		"5.12.0":              true,
		"6.1.0-50-amd64":      true,
		"6.12.95+deb12-amd64": true,
		"6.18.44-fc-v769":     true,
		"10.0.1":              true,
	} {
		if got, err := releaseHasOwnerFlag(rel); err != nil || got != want {
			t.Errorf("releaseHasOwnerFlag(%q) = %v, %v; want %v", rel, got, err, want)
		}
	}
	if _, err := releaseHasOwnerFlag("linux"); err == nil {
		t.Error("releaseHasOwnerFlag accepted a release without a version")
	}
}

// startTracer is how every privileged test in this package starts a Tracer
// (record may be nil). On a kernel >= 5.12 Start must succeed and the Tracer
// is returned. On an older kernel Start must fail with ErrOwnerUnsupported,
// its message must name the 5.12 requirement (users read it, not the error
// value), and no pktdrop table may be left in any of o.Netns; it then
// returns nil, and the caller returns: the refusal is everything such a
// kernel can be tested for.
func startTracer(t *testing.T, ctx context.Context, o Options, record func(Event)) *Tracer {
	t.Helper()
	want, rel := ownerFlagExpected(t)
	tr, err := start(ctx, o, record)
	if want {
		if err != nil {
			t.Fatalf("start tracer on kernel %s (>= 5.12, owner flag supported): %v", rel, err)
		}
		return tr
	}
	if err == nil {
		_ = tr.Close()
		t.Fatalf("start tracer on kernel %s (< 5.12) succeeded; it must refuse without the table owner flag", rel)
	}
	if !errors.Is(err, ErrOwnerUnsupported) {
		t.Fatalf("start tracer on kernel %s (< 5.12): error does not wrap ErrOwnerUnsupported: %v", rel, err)
	}
	if !strings.Contains(err.Error(), "5.12") {
		t.Errorf("start tracer on kernel %s: error does not name the 5.12 requirement: %v", rel, err)
	}
	for _, p := range o.Netns {
		for _, name := range inetTables(t, p) {
			if strings.HasPrefix(name, ownTablePrefix) {
				t.Errorf("refused Start left table inet %s behind in %s", name, p)
			}
		}
	}
	t.Logf("kernel %s < 5.12: Start refused as required: %v", rel, err)
	return nil
}

// inetTables lists the inet tables of the netns at path over netlink, not
// with nft: some callers have emptied PATH (TestRuleTextUnavailable).
func inetTables(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatalf("nftables conn in %s: %v", path, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("list inet tables in %s: %v", path, err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	return names
}
