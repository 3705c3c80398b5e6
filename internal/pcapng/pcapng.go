// Package pcapng writes the packets pktdrop reports (--pcap) to a pcapng
// file that Wireshark, tshark and tcpdump read: one interface per network
// namespace and device, and each packet commented with its report, as
// text and as the JSON object of `-o json`.
package pcapng

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/report"
)

// Options describe the capture.
type Options struct {
	Command string // the command line, the section's comment
	Snaplen int    // bytes asked for per packet (--snaplen)
	Version string // pktdrop's version, in the section's application
}

// ethHeader is the length of the Ethernet header put before packets that
// have none of their own (tunnels, locally sent ones), so that every
// interface in the file has one link type and tcpdump reads it whole.
const ethHeader = 14

// maxComment keeps an option within its 16-bit length.
const maxComment = 65000

type ifKey struct{ netns, ifindex uint32 }

// Writer writes one pcapng section. It is not safe for concurrent use,
// except SetLost.
type Writer struct {
	out    io.Writer
	o      Options
	ng     *pcapgo.NgWriter // created with the first interface
	ifaces map[ifKey]int
	counts []uint64 // packets written per interface
	start  time.Time
	lost   lostCount
	noted  uint64 // lost events already put on a packet
	frame  []byte
	json   []byte
}

// New returns a Writer to out. Nothing is written before the first packet
// (or Close): the first interface block must follow the section header.
func New(out io.Writer, o Options) *Writer {
	return &Writer{out: out, o: o, ifaces: map[ifKey]int{}, start: time.Now()}
}

// Snaplen is the bytes asked for per packet.
func (w *Writer) Snaplen() int { return w.o.Snaplen }

// SetLost tells the running total of events lost before the output (ring
// buffer full, undecodable): the next packet carries what is new, as its
// drop count and a comment.
func (w *Writer) SetLost(total uint64) { w.lost.set(total) }

// Write writes the packet p that r reports.
func (w *Writer) Write(r *report.Report, p event.Packet) error {
	id, err := w.iface(r)
	if err != nil {
		return err
	}
	data, length := w.ethernet(r, p)
	ci := gopacket.CaptureInfo{Timestamp: r.Time, CaptureLength: len(data), Length: length, InterfaceIndex: id}
	w.json = output.AppendJSON(w.json[:0], r)
	comments := []string{clip(strings.TrimSuffix(output.Text(r), "\n")), clip(string(w.json))}
	opts := pcapgo.NgPacketOptions{}
	if len(p.Data) == 0 {
		comments = append(comments, "pktdrop: the packet's bytes could not be read (no network header yet)")
	} else if len(p.Data) < int(p.Len) {
		why := fmt.Sprintf("--snaplen %d", w.o.Snaplen)
		if len(p.Data) < w.o.Snaplen {
			why = "the rest is not in the packet's linear data"
		}
		comments = append(comments, fmt.Sprintf("pktdrop: truncated: captured %d of %d bytes (%s)", len(p.Data), p.Len, why))
	}
	if total := w.lost.get(); total > w.noted {
		n := total - w.noted
		w.noted = total
		opts.DropCount = &n
		comments = append(comments, fmt.Sprintf("pktdrop: %d events lost before this packet "+
			"(ring buffer full: raise --ringbuf-size or narrow the filters)", n))
	}
	opts.Comments = comments
	if err := w.ng.WritePacketWithOptions(ci, data, opts); err != nil {
		return fmt.Errorf("write pcapng packet: %w", err)
	}
	w.counts[id]++
	return nil
}

// ethernet returns the frame to write and its full length: the packet's
// own Ethernet header, or one with zero addresses and the packet's
// ethertype.
func (w *Writer) ethernet(r *report.Report, p event.Packet) ([]byte, int) {
	length := int(max(p.Len, uint32(len(p.Data))))
	if len(p.Data) == 0 {
		length = int(r.Len) // skb->len: the best length there is
	}
	if p.MAC && len(p.Data) > 0 {
		return p.Data, length
	}
	var typ uint16
	switch {
	case len(p.Data) > 0 && p.Data[0]>>4 == 4, len(p.Data) == 0 && r.Family == "ipv4":
		typ = uint16(layers.EthernetTypeIPv4)
	case len(p.Data) > 0 && p.Data[0]>>4 == 6, len(p.Data) == 0 && r.Family == "ipv6":
		typ = uint16(layers.EthernetTypeIPv6)
	}
	var macs [12]byte
	w.frame = append(w.frame[:0], macs[:]...)
	w.frame = append(w.frame, byte(typ>>8), byte(typ))
	w.frame = append(w.frame, p.Data...)
	return w.frame, length + ethHeader
}

// iface returns the interface id of r's (netns, device), adding its block
// (and, the first time, the section header) when new.
func (w *Writer) iface(r *report.Report) (int, error) {
	k := ifKey{r.Netns, r.Ifindex}
	if id, ok := w.ifaces[k]; ok {
		return id, nil
	}
	dev, ns := r.Iface, r.NetnsName
	if dev == "" {
		dev = "?"
	}
	if ns == "" {
		ns = fmt.Sprint(r.Netns)
	}
	intf := w.intf(dev+"@"+ns, fmt.Sprintf("device %s (ifindex %d) in network namespace %s (inode %d)",
		dev, r.Ifindex, ns, r.Netns))
	id, err := w.add(intf)
	if err != nil {
		return 0, err
	}
	w.ifaces[k] = id
	return id, nil
}

func (w *Writer) intf(name, desc string) pcapgo.NgInterface {
	return pcapgo.NgInterface{Name: name, Description: desc, OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet,
		SnapLength: uint32(w.o.Snaplen + ethHeader), TimestampResolution: 9}
}

func (w *Writer) add(intf pcapgo.NgInterface) (int, error) {
	if w.ng == nil {
		ng, err := pcapgo.NewNgWriterInterface(w.out, intf, pcapgo.NgWriterOptions{SectionInfo: w.section()})
		if err != nil {
			return 0, fmt.Errorf("write pcapng header: %w", err)
		}
		w.ng = ng
		w.counts = append(w.counts, 0)
		return 0, nil
	}
	id, err := w.ng.AddInterface(intf)
	if err != nil {
		return 0, fmt.Errorf("write pcapng interface: %w", err)
	}
	w.counts = append(w.counts, 0)
	return id, nil
}

func (w *Writer) section() pcapgo.NgSectionInfo {
	osName := runtime.GOOS
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		osName = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	return pcapgo.NgSectionInfo{Hardware: runtime.GOARCH, OS: osName, Application: "pktdrop " + w.o.Version,
		Comment: clip(w.o.Command)}
}

// Flush writes what is buffered: after each burst, so that a reader at
// the other end of a pipe (wireshark -k -i -) sees packets at once.
func (w *Writer) Flush() error {
	if w.ng == nil {
		return nil
	}
	if err := w.ng.Flush(); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

// Close ends the section with each interface's statistics: the packets
// written, and, on the first interface, every event lost in the run (the
// ring buffer is shared by all devices, so a loss has no interface). A
// run without packets still leaves a valid file, with one empty
// interface.
func (w *Writer) Close() error {
	if w.ng == nil {
		if _, err := w.add(w.intf("none", "pktdrop reported no packet")); err != nil {
			return err
		}
	}
	end := time.Now()
	for id, n := range w.counts {
		st := pcapgo.NgInterfaceStatistics{LastUpdate: end, StartTime: w.start, EndTime: end,
			PacketsReceived: n, PacketsDropped: pcapgo.NgNoValue64}
		if id == 0 {
			st.PacketsDropped = w.lost.get()
		}
		if err := w.ng.WriteInterfaceStats(id, st); err != nil {
			return fmt.Errorf("write pcapng statistics: %w", err)
		}
	}
	return w.Flush()
}

func clip(s string) string {
	if len(s) > maxComment {
		return s[:maxComment]
	}
	return s
}
