package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/pcapng"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/tracer"
)

// capture is --pcap: each reported packet, with its report, into a pcapng
// file. A nil *capture is off and costs nothing.
type capture struct {
	w    *pcapng.Writer
	file *os.File // nil when writing to stdout
	out  *bufio.Writer
	mu   sync.Mutex
	held map[*report.Report]event.Packet
	done bool
}

// openCapture checks --snaplen and opens the file. It returns where
// reports go instead of stdout: stderr when the file is stdout ("-").
func openCapture(o Options, stdout, stderr io.Writer) (*capture, io.Writer, error) {
	if o.Snaplen < 1 || o.Snaplen > event.SnapMax {
		return nil, nil, &filter.UsageError{Flag: "snaplen", Value: fmt.Sprint(o.Snaplen),
			Msg: fmt.Sprintf("want 1 to %d bytes", event.SnapMax)}
	}
	if o.Pcap == "" {
		return nil, stdout, nil
	}
	c := &capture{held: map[*report.Report]event.Packet{}}
	var dst io.Writer = stdout
	if o.Pcap != "-" {
		f, err := os.OpenFile(o.Pcap, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open pcap file: %w", err)
		}
		c.file, dst = f, f
	} else {
		stdout = stderr
	}
	c.out = bufio.NewWriterSize(dst, 256<<10)
	c.w = pcapng.New(c.out, pcapng.Options{Command: o.Command, Snaplen: o.Snaplen, Version: o.Version})
	return c, stdout, nil
}

// constants adds the snap length to the probes' settings.
func (c *capture) constants(m map[string]any) map[string]any {
	if c != nil {
		m["cfg_snaplen"] = uint32(c.w.Snaplen())
	}
	return m
}

// hold keeps a copy of ev's packet until r is emitted (the event is reused
// once its handler returns, and --rules emits later).
func (c *capture) hold(r *report.Report, p event.Packet) {
	if c == nil {
		return
	}
	p.Data = append([]byte(nil), p.Data...)
	c.mu.Lock()
	c.held[r] = p
	c.mu.Unlock()
}

// write writes r's held packet.
func (c *capture) write(r *report.Report) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	p, ok := c.held[r]
	delete(c.held, r)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.w.Write(r, p)
}

func (c *capture) flush() error {
	if c == nil {
		return nil
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if err := c.out.Flush(); err != nil {
		return fmt.Errorf("write pcap file: %w", err)
	}
	return nil
}

// followLost passes the lost-event count to the file once a second.
func (c *capture) followLost(ctx context.Context, tr *tracer.Tracer, undecodable *atomic.Uint64) {
	if c == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cnt, err := tr.Counters(); err == nil {
			c.w.SetLost(cnt.Lost + undecodable.Load())
		}
	}
}

// close ends the file with the run's final lost count.
func (c *capture) close(lost uint64) error {
	if c == nil {
		return nil
	}
	c.done = true
	c.w.SetLost(lost)
	err := c.w.Close()
	if ferr := c.out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write pcap file: %w", ferr)
	}
	if c.file != nil {
		err = errors.Join(err, c.file.Close())
	}
	return err
}

// discard removes the file of a run that failed before close (no probes,
// no privileges): an empty file would only mislead.
func (c *capture) discard() {
	if c == nil || c.done || c.file == nil {
		return
	}
	c.done = true
	_ = c.file.Close()
	_ = os.Remove(c.file.Name())
}
