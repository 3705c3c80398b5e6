package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sink is a TCP server in namespace B that reads and counts everything.
type Sink struct {
	ln    net.Listener
	bytes atomic.Uint64
	wg    sync.WaitGroup
}

// NewSink listens on addrB:tcpPort in ns.
func NewSink(ns string) (*Sink, error) {
	s := &Sink{}
	err := In(ns, func() error {
		var err error
		s.ln, err = net.Listen("tcp4", net.JoinHostPort(addrB, strconv.Itoa(tcpPort)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen in %s: %w", ns, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				unpin := pin(flowCPU)
				defer unpin()
				fd, err := blockingFD(c)
				if err != nil {
					return
				}
				buf := make([]byte, 256<<10)
				for {
					n, err := unix.Read(fd, buf)
					if err == unix.EINTR {
						continue // the runtime's preemption signal
					}
					if n <= 0 || err != nil {
						return
					}
					s.bytes.Add(uint64(n))
				}
			}()
		}
	}()
	return s, nil
}

// Close stops the server.
func (s *Sink) Close() {
	_ = s.ln.Close()
}

// TCPFlow sends one TCP stream from namespace ns to the sink for warm+d and
// returns the receiver's throughput over the last d, in bytes per second.
// The warm-up keeps slow start and connection setup out of the figure.
func TCPFlow(ctx context.Context, ns string, s *Sink, warm, d time.Duration) (float64, error) {
	var c net.Conn
	err := In(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(addrB, strconv.Itoa(tcpPort)), 5*time.Second)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("connect from %s: %w", ns, err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		unpin := pin(flowCPU)
		defer unpin()
		fd, err := blockingFD(c)
		if err != nil {
			done <- err
			return
		}
		buf := make([]byte, 128<<10)
		for !stop.Load() {
			if _, err := unix.Write(fd, buf); err != nil && err != unix.EINTR {
				done <- err
				return
			}
		}
		done <- nil
	}()
	exited := false
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			exited = true
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("tcp flow: %w", err)
		case <-time.After(d):
			return nil
		}
	}
	var rate float64
	if err = sleep(warm); err == nil {
		b0, t0 := s.bytes.Load(), time.Now()
		if err = sleep(d); err == nil {
			b1, t1 := s.bytes.Load(), time.Now()
			rate = float64(b1-b0) / t1.Sub(t0).Seconds()
		}
	}
	// The writer uses the descriptor directly: it must be out of its last
	// write before the descriptor is closed (and perhaps reused).
	stop.Store(true)
	var werr error
	if !exited {
		werr = <-done
	}
	_ = c.Close()
	if err == nil && werr != nil {
		err = werr
	}
	return rate, err
}

// flowCPU runs the whole TCP flow: sender, receiver and the softirqs
// they raise. On one CPU the flow is bound by that CPU, so its rate
// measures what every packet costs, which is what pktdrop's probes add
// to; spread by the scheduler over both CPUs of this machine, consecutive
// baseline flows differed by up to 25%, far more than the overhead being
// measured. pktdrop's own process is left free to use the other CPU, as
// it would on a node with an idle core.
const flowCPU = 0

// pin keeps the calling goroutine on one OS thread bound to cpu until the
// returned func runs.
func pin(cpu int) func() {
	runtime.LockOSThread()
	var old unix.CPUSet
	if unix.SchedGetaffinity(0, &old) != nil {
		return runtime.UnlockOSThread
	}
	var set unix.CPUSet
	set.Set(cpu % runtime.NumCPU())
	if unix.SchedSetaffinity(0, &set) != nil {
		return runtime.UnlockOSThread
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// blockingFD is the connection's socket in blocking mode, for plain
// read/write syscalls on a pinned thread: the runtime's poller would hand
// the goroutine between threads at every full or empty socket buffer.
func blockingFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd := -1
	var serr error
	if err := rc.Control(func(f uintptr) {
		fd = int(f)
		serr = unix.SetNonblock(fd, false)
	}); err != nil {
		return 0, err
	}
	return fd, serr
}

// Storm sends small UDP datagrams from namespace A to B's storm port, which
// B's nftables table drops, with sendmmsg in batches.
type Storm struct {
	fds []int
}

// stormBatch is the number of datagrams per sendmmsg call.
const stormBatch = 64

// NewStorm opens n sender sockets in ns.
func NewStorm(ns string, n int) (*Storm, error) {
	s := &Storm{}
	err := In(ns, func() error {
		for i := 0; i < n; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			s.fds = append(s.fds, fd)
			dst := &unix.SockaddrInet4{Port: stormPort, Addr: [4]byte(net.ParseIP(addrB).To4())}
			if err := unix.Connect(fd, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("storm socket in %s: %w", ns, err)
	}
	return s, nil
}

// Close closes the sockets.
func (s *Storm) Close() {
	for _, fd := range s.fds {
		_ = unix.Close(fd)
	}
	s.fds = nil
}

// StormResult is what the senders did.
type StormResult struct {
	Sent    uint64        // datagrams the kernel accepted
	Elapsed time.Duration // from first to last send
}

// Run sends for d, at rate datagrams per second in all when rate > 0, else
// as fast as the senders go. Pacing tops the count up to rate×elapsed
// every ~100µs, so the offered load is smooth at millisecond scale.
func (s *Storm) Run(ctx context.Context, rate float64, d time.Duration) StormResult {
	var sent atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	per := rate / float64(len(s.fds))
	for _, fd := range s.fds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := newMmsg(stormBatch)
			var mine uint64
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				n := stormBatch
				if per > 0 {
					due := int64(per*now.Sub(start).Seconds()) - int64(mine)
					if due <= 0 {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					n = int(min(due, stormBatch))
				}
				k := m.send(fd, n)
				mine += uint64(k)
				sent.Add(uint64(k))
			}
		}()
	}
	wg.Wait()
	return StormResult{Sent: sent.Load(), Elapsed: time.Since(start)}
}

// mmsg is a reusable sendmmsg vector of identical 32-byte datagrams.
type mmsg struct {
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	buf  []byte
}

func newMmsg(n int) *mmsg {
	m := &mmsg{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), buf: make([]byte, 32)}
	copy(m.buf, "pktdrop-bench storm datagram...")
	for i := range m.hdrs {
		m.iovs[i].Base = &m.buf[0]
		m.iovs[i].SetLen(len(m.buf))
		m.hdrs[i].Hdr.Iov = &m.iovs[i]
		m.hdrs[i].Hdr.SetIovlen(1)
	}
	return m
}

// send returns how many datagrams went out; errors such as ENOBUFS under
// pressure count as zero sent, and the caller simply tries again. A raw
// syscall: sendmmsg with MSG_DONTWAIT never blocks, and the runtime's
// syscall bookkeeping (handing the P to another thread during a long
// batch, futex wakeups to take it back) cost the storm a third of its
// rate.
func (m *mmsg) send(fd, n int) int {
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n),
		unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		if errno == unix.EAGAIN || errno == unix.ENOBUFS {
			time.Sleep(50 * time.Microsecond)
		}
		return 0
	}
	return int(r)
}
