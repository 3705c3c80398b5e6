// Package recorded loads the recorded events under the repository's
// testdata/ together with the system they were recorded on, so that the
// tests of report building, cause inference and output all run the same
// pipeline over the same fixtures. It is for tests only.
//
// Layout of testdata/:
//
//	events/<case>.json       one event.Event, as decoded from the ring buffer
//	systems/<case>.json      the machine: kernel release, boot time, and per
//	                         netns inode its name, devices, sysctls, routes
//	kernels/<release>/kallsyms      text symbols, /proc/kallsyms format
//	kernels/<release>/drop_reasons  enum skb_drop_reason, one name a line in
//	                         value order (absent: a kernel without reasons)
//	kernels/netfilter.json   netfilter and conntrack enums, bracket priorities
//
// The drop reason numbers are this fixture's own: they come from the order
// of names in drop_reasons, never from a real kernel, just as pktdrop reads
// them from BTF and never compiles them in.
package recorded

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/kenum"
	"github.com/pktdrop/pktdrop/internal/ksym"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/probe"
	"github.com/pktdrop/pktdrop/internal/reasons"
	"github.com/pktdrop/pktdrop/internal/report"
)

// Dir is the repository's testdata directory, found from this file so
// that tests in any package can use it.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Case is one recorded event and the system it was recorded on.
type Case struct {
	Name    string
	Event   event.Event
	System  *System
	Builder report.Builder
}

// Report runs the pipeline pktdrop runs on a live event: Build, then Infer.
func (c *Case) Report() *report.Report {
	r := c.Builder.Build(&c.Event)
	cause.Infer(r, c.System)
	return r
}

// Cases lists the recorded cases by name, sorted.
func Cases() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(Dir(), "events", "*.json"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no recorded events in %s", filepath.Join(Dir(), "events"))
	}
	return names, nil
}

// LoadAll loads every recorded case.
func LoadAll() ([]*Case, error) {
	names, err := Cases()
	if err != nil {
		return nil, err
	}
	out := make([]*Case, 0, len(names))
	for _, n := range names {
		c, err := Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Load loads one case and builds the names of its kernel and system.
func Load(name string) (*Case, error) {
	c := &Case{Name: name}
	if err := readJSON(filepath.Join(Dir(), "events", name+".json"), &c.Event); err != nil {
		return nil, err
	}
	c.System = &System{}
	if err := readJSON(filepath.Join(Dir(), "systems", name+".json"), c.System); err != nil {
		return nil, err
	}
	k, err := LoadKernel(c.System.Kernel)
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", name, err)
	}
	c.Builder = report.Builder{Boot: c.System.Boot, Names: report.Names{
		Reason: k.Reasons.Name, HasReasons: k.Reasons.Available(), Symbol: k.Symbols.Format,
		Netns: c.System.NetnsName, Device: c.System.Device, Enums: k.Enums,
		Table: func(p int32) string { return probe.BracketTable(k.Brackets, p) },
	}}
	return c, nil
}

// readJSON decodes strictly: a misspelt field in a fixture must fail, not
// silently become a zero.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Kernel is what pktdrop reads from a running kernel: symbols, drop
// reasons and enums from BTF.
type Kernel struct {
	Release  string
	Symbols  *ksym.Table
	Reasons  *reasons.Table
	Enums    *kenum.Names
	Brackets [8]int32
}

type netfilterFile struct {
	Comment  string           `json:"comment"`
	Hooks    map[uint8]string `json:"hooks"`
	Families map[uint8]string `json:"families"`
	CtInfo   map[string]uint8 `json:"ctinfo"` // enum ip_conntrack_info names → value
	Brackets map[string]int32 `json:"brackets"`
	Order    []string         `json:"bracket_order"`
}

// LoadKernel reads testdata/kernels/<release>.
func LoadKernel(release string) (*Kernel, error) {
	dir := filepath.Join(Dir(), "kernels", release)
	k := &Kernel{Release: release}
	var err error
	if k.Symbols, err = ksym.Load(filepath.Join(dir, "kallsyms")); err != nil {
		return nil, err
	}
	if k.Reasons, err = loadReasons(filepath.Join(dir, "drop_reasons")); err != nil {
		return nil, err
	}
	var nf netfilterFile
	if err := readJSON(filepath.Join(Dir(), "kernels", "netfilter.json"), &nf); err != nil {
		return nil, err
	}
	k.Enums = &kenum.Names{Hook: nf.Hooks, Family: nf.Families, CtInfo: map[uint8]string{}, Reply: map[uint8]bool{}}
	// The same mapping kenum.FromSpec applies to the BTF enum.
	ctNames := map[string]string{"IP_CT_ESTABLISHED": "established", "IP_CT_RELATED": "related", "IP_CT_NEW": "new",
		"IP_CT_ESTABLISHED_REPLY": "established reply", "IP_CT_RELATED_REPLY": "related reply",
		"IP_CT_UNTRACKED": "untracked"}
	for name, v := range nf.CtInfo {
		if n, ok := ctNames[name]; ok {
			k.Enums.CtInfo[v] = n
			k.Enums.Reply[v] = strings.HasSuffix(name, "_REPLY")
		}
	}
	// probe.bracketPriorities: each bracket sits one below its table's
	// priority, the last one just after NAT_SRC.
	if len(nf.Order) != 7 {
		return nil, fmt.Errorf("netfilter.json: bracket_order has %d names, want 7", len(nf.Order))
	}
	for i, name := range nf.Order {
		p, ok := nf.Brackets[name]
		if !ok {
			return nil, fmt.Errorf("netfilter.json: no priority for %s", name)
		}
		k.Brackets[i] = p - 1
	}
	k.Brackets[7] = k.Brackets[6] + 2
	return k, nil
}

// loadReasons builds the table from names in value order; a missing file
// is a kernel without enum skb_drop_reason (before 5.17).
func loadReasons(path string) (*reasons.Table, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return reasons.FromEnum(nil), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e := &btf.Enum{Name: "skb_drop_reason", Size: 4}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e.Values = append(e.Values, btf.EnumValue{Name: line, Value: uint64(len(e.Values))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return reasons.FromEnum(e), nil
}

// System is a fake of the machine an event was recorded on. It implements
// cause.System and the name lookups of report.Names the way
// netns.Resolver does, fallbacks included.
type System struct {
	Comment string `json:"comment"`
	Kernel  string `json:"kernel"`
	// Boot is the wall-clock time of CLOCK_MONOTONIC zero.
	Boot  time.Time         `json:"boot"`
	Netns map[uint32]*Netns `json:"netns"`
}

// Netns is one network namespace of the fake system.
type Netns struct {
	Name    string            `json:"name"`
	Devices map[uint32]string `json:"devices"`
	// Sysctl is keyed as netns.Resolver.Sysctl is asked: a path under
	// /proc/sys, e.g. net/ipv4/conf/all/rp_filter.
	Sysctl map[string]string `json:"sysctl"`
	Routes []Route           `json:"routes"`
}

// Route is one route of the main table (or Table) of a fake netns.
type Route struct {
	Dst     string `json:"dst"` // CIDR or address
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev"`
	Table   int    `json:"table,omitempty"` // 0 means main (254)
}

// NetnsName names inode like netns.Resolver.Name.
func (s *System) NetnsName(inode uint32) string {
	if n, ok := s.Netns[inode]; ok && n.Name != "" {
		return n.Name
	}
	return "netns:" + strconv.FormatUint(uint64(inode), 10)
}

// Device names ifindex like netns.Resolver.DeviceName.
func (s *System) Device(inode, ifindex uint32) string {
	if ifindex == 0 {
		return ""
	}
	if n, ok := s.Netns[inode]; ok {
		if d, ok := n.Devices[ifindex]; ok {
			return d
		}
	}
	return "if" + strconv.FormatUint(uint64(ifindex), 10)
}

// Sysctl answers like netns.Resolver.Sysctl, errors included.
func (s *System) Sysctl(inode uint32, key string) (string, error) {
	n, ok := s.Netns[inode]
	if !ok {
		return "", fmt.Errorf("read sysctl %s in netns %d: no such netns", key, inode)
	}
	v, ok := n.Sysctl[key]
	if !ok {
		return "", fmt.Errorf("read sysctl %s in netns %d: open /proc/sys/%s: %w", key, inode, key, syscall.ENOENT)
	}
	return v, nil
}

// RouteGet is `ip route get dst` by longest prefix match over the netns'
// routes. Options (source, iif, mark) are ignored: the fixtures have no
// policy routing.
func (s *System) RouteGet(inode uint32, dst net.IP, _ netns.RouteOptions) (netns.Route, error) {
	n, ok := s.Netns[inode]
	if !ok {
		return netns.Route{}, fmt.Errorf("route get in netns %d: no such netns", inode)
	}
	a, ok := netip.AddrFromSlice(dst)
	if !ok {
		return netns.Route{}, fmt.Errorf("route get %v: bad address", dst)
	}
	a = a.Unmap()
	best, bestLen := -1, -1
	for i, r := range n.Routes {
		p, err := parsePrefix(r.Dst)
		if err != nil {
			return netns.Route{}, err
		}
		if p.Addr().Is4() == a.Is4() && p.Contains(a) && p.Bits() > bestLen {
			best, bestLen = i, p.Bits()
		}
	}
	if best < 0 {
		return netns.Route{}, fmt.Errorf("route get %s in netns %d: %w", a, inode, syscall.ENETUNREACH)
	}
	r := n.Routes[best]
	out := netns.Route{Dev: r.Dev, Table: r.Table}
	if out.Table == 0 {
		out.Table = 254
	}
	if r.Gateway != "" {
		out.Gateway = net.ParseIP(r.Gateway)
	}
	for idx, d := range n.Devices {
		if d == r.Dev {
			out.Ifindex = int(idx)
		}
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}
