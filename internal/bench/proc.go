package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

// Proc is one pktdrop process.
type Proc struct {
	cmd     *exec.Cmd
	Attach  time.Duration // process start to ready file
	done    chan struct{}
	waitErr error

	mu     sync.Mutex
	lines  []string // stderr
	liveLo int      // live "events lost" lines seen
}

// readyTimeout bounds how long pktdrop may take to attach.
const readyTimeout = 60 * time.Second

// procs are the live pktdrop processes, killed by Cleanup on exit or
// SIGINT so none outlives the benchmark.
var (
	procsMu sync.Mutex
	procs   = map[*Proc]bool{}
)

// StartPktdrop runs `bin args... --ready-file F` with stdout on /dev/null
// and returns once F exists. Attach is measured from just before the
// process is started.
func StartPktdrop(bin, dir string, args ...string) (*Proc, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	return StartPktdropOut(bin, dir, devnull, args...)
}

// StartPktdropOut is StartPktdrop with stdout (the reports) to out.
func StartPktdropOut(bin, dir string, out io.Writer, args ...string) (*Proc, error) {
	ready := filepath.Join(dir, fmt.Sprintf("ready-%d", time.Now().UnixNano()))
	p := &Proc{cmd: exec.Command(bin, append(args, "--ready-file", ready)...), done: make(chan struct{})}
	p.cmd.Stdout = out
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	// Its own process group, and killed if the benchmark dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			if strings.Contains(l, "events lost in the last second") {
				p.liveLo++
			}
			if len(p.lines) < 1000 {
				p.lines = append(p.lines, l)
			}
			p.mu.Unlock()
		}
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	deadline := start.Add(readyTimeout)
	for {
		if _, err := os.Stat(ready); err == nil {
			p.Attach = time.Since(start)
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("pktdrop exited before it was ready: %v\n%s", p.waitErr, p.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("pktdrop not ready after %v\n%s", readyTimeout, p.Stderr())
		}
		time.Sleep(time.Millisecond)
	}
	_ = os.Remove(ready)
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stderr is what pktdrop printed on stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// LiveLostLines counts the live lost-event lines.
func (p *Proc) LiveLostLines() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.liveLo
}

// status reads one "Key: N kB" field of /proc/<pid>/status.
func (p *Proc) status(key string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, p.Pid())
}

// HWM is the peak resident set size in bytes (VmHWM).
func (p *Proc) HWM() (uint64, error) { return p.status("VmHWM") }

// RSS is the current resident set size in bytes.
func (p *Proc) RSS() (uint64, error) { return p.status("VmRSS") }

// ResetHWM sets the peak RSS to the current RSS (proc(5), clear_refs "5"),
// so that a later HWM covers only what happened in between.
func (p *Proc) ResetHWM() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid()), []byte("5"), 0)
}

// CPU is the time pktdrop has run on a CPU, all threads (schedstat is in
// nanoseconds, unlike stat's clock ticks).
func (p *Proc) CPU() (time.Duration, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.Pid()))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p.Pid(), e.Name()))
		if err != nil {
			continue // thread gone
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(n)
		}
	}
	return sum, nil
}

// WaitIdle returns once pktdrop has used under 3% of a CPU for 200ms (it
// has drained the ring buffer), or after max. It returns the time waited.
func (p *Proc) WaitIdle(max time.Duration) time.Duration {
	start := time.Now()
	const window = 200 * time.Millisecond
	prev, _ := p.CPU()
	for time.Since(start) < max {
		time.Sleep(window)
		cur, err := p.CPU()
		if err != nil {
			break
		}
		if cur-prev < window*3/100 {
			break
		}
		prev = cur
	}
	return time.Since(start)
}

// Summary is pktdrop's own closing line: "N drops[, T traced packets][, B
// benign frees (not drops)], L events lost (ring buffer full: R,
// undecodable: U)".
type Summary struct {
	Drops, Traced, Benign, Lost, Ringbuf, Undecodable uint64
}

var summaryRE = regexp.MustCompile(`(?m)^(\d+) drops(?:, (\d+) traced packets)?(?:, (\d+) benign frees \(not drops\))?, (\d+) events lost \(ring buffer full: (\d+), undecodable: (\d+)\)`)

// Stop sends SIGINT, waits for the exit and parses the summary.
func (p *Proc) Stop() (Summary, time.Duration, error) {
	start := time.Now()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.Kill()
		return Summary{}, time.Since(start), errors.New("pktdrop did not stop within 60s of SIGINT")
	}
	took := time.Since(start)
	p.forget()
	out := p.Stderr()
	if p.waitErr != nil {
		return Summary{}, took, fmt.Errorf("pktdrop: %v\n%s", p.waitErr, out)
	}
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		return Summary{}, took, fmt.Errorf("no summary line in pktdrop's output:\n%s", out)
	}
	n := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
	return Summary{Drops: n(m[1]), Traced: n(m[2]), Benign: n(m[3]), Lost: n(m[4]), Ringbuf: n(m[5]), Undecodable: n(m[6])}, took, nil
}

// Kill kills the process group and waits.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
	p.forget()
}

func (p *Proc) forget() {
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
}

// KillAll kills every pktdrop this benchmark started and has not stopped.
func KillAll() {
	procsMu.Lock()
	all := make([]*Proc, 0, len(procs))
	for p := range procs {
		all = append(all, p)
	}
	procsMu.Unlock()
	for _, p := range all {
		p.Kill()
	}
}

// TrackedPackets counts the entries of pktdrop's "tracks" map (packets
// being followed), found through the map fds the process holds. Only keys
// are walked: values are over a kilobyte each.
func (p *Proc) TrackedPackets() (int, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", p.Pid())
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	seen := map[uint32]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var id uint64
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "map_id:"); ok {
				id, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			}
		}
		if id == 0 || seen[uint32(id)] {
			continue
		}
		seen[uint32(id)] = true
		m, err := ebpf.NewMapFromID(ebpf.MapID(id))
		if err != nil {
			continue
		}
		info, err := m.Info()
		if err != nil || info.Name != "tracks" {
			m.Close()
			continue
		}
		n := 0
		var key, next uint64
		err = m.NextKey(nil, &next)
		for err == nil {
			n++
			key = next
			err = m.NextKey(&key, &next)
		}
		m.Close()
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("walk tracks map: %w", err)
		}
		return n, nil
	}
	return 0, errors.New("pktdrop holds no map named tracks")
}
