package nswatch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A directory that does not exist yet (no namespace was ever added) is
// watched through its parent; files created in it, and removed, call sync
// well before the periodic rescan would.
func TestWatchDirCreatedLater(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run", "netns")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Start(ctx, []string{dir}, func() { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	waitCall := func(what string) {
		t.Helper()
		n := calls.Load()
		for end := time.Now().Add(Poll / 2); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if calls.Load() > n {
				return
			}
		}
		t.Fatalf("no sync within %v of %s", Poll/2, what)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitCall("mkdir")
	time.Sleep(1500 * time.Millisecond) // let the settle sequence end
	f := filepath.Join(dir, "cni-1")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitCall("a namespace file created")
	time.Sleep(1500 * time.Millisecond)
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	waitCall("a namespace file removed")
}

// Unknown inodes trigger at most one rescan per MinUnknown.
func TestUnknownRateLimited(t *testing.T) {
	w := &Watcher{kick: make(chan struct{}, 1)}
	w.Unknown(1)
	w.Unknown(2)
	if len(w.kick) != 1 {
		t.Fatalf("kicks = %d after two unknown inodes", len(w.kick))
	}
	<-w.kick
	w.Unknown(3)
	if len(w.kick) != 0 {
		t.Error("a second unknown inode within MinUnknown kicked again")
	}
}
