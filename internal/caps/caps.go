// Package caps says which Linux capabilities pktdrop lacks, and what to
// grant: root in a container has only the capabilities it was given, so
// uid 0 proves nothing.
package caps

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// All is what pktdrop needs for every feature, as Kubernetes names them.
var All = []string{"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYSLOG", "SYS_PTRACE"}

// SecurityContext is the snippet that grants All.
const SecurityContext = "securityContext: {capabilities: {add: [BPF, PERFMON, NET_ADMIN, SYS_ADMIN, SYSLOG, SYS_PTRACE]}} " +
	"(with hostNetwork: true, hostPID: true; or privileged: true)"

// Set is an effective capability set.
type Set [2]uint32

// Effective reads the calling thread's effective capabilities.
func Effective() (Set, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return Set{}, fmt.Errorf("read capabilities: %w", err)
	}
	return Set{data[0].Effective, data[1].Effective}, nil
}

// Has tells whether capability c is in the set.
func (s Set) Has(c int) bool { return s[c/32]&(1<<(c%32)) != 0 }

// MissingError is a capability pktdrop cannot run without.
type MissingError struct {
	Caps []string // CAP_ names
	What string   // what fails without them
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("missing %s: %s; grant %s, e.g. in Kubernetes %s",
		strings.Join(e.Caps, " and "), e.What, strings.Join(e.Caps, " and "), SecurityContext)
}

// Check says what the set lacks: err for what pktdrop cannot run without,
// warnings for what it runs with less. procDir is the node's /proc.
func Check(s Set, procDir string) (warnings []string, err error) {
	admin := s.Has(unix.CAP_SYS_ADMIN)
	var load []string
	if !admin && !s.Has(unix.CAP_BPF) {
		load = append(load, "CAP_BPF")
	}
	if !admin && !s.Has(unix.CAP_PERFMON) {
		load = append(load, "CAP_PERFMON")
	}
	if len(load) > 0 {
		return nil, &MissingError{Caps: load, What: "pktdrop cannot load its BPF programs (CAP_SYS_ADMIN would do too, " +
			"and a runtime's default seccomp profile allows bpf() only with CAP_SYS_ADMIN)"}
	}
	if !s.Has(unix.CAP_NET_ADMIN) {
		return nil, &MissingError{Caps: []string{"CAP_NET_ADMIN"},
			What: "pktdrop cannot attach netfilter links, read the firewall or trace rules"}
	}
	if !admin {
		warnings = append(warnings, "missing CAP_SYS_ADMIN: pktdrop cannot enter other network namespaces (setns), "+
			"so pods' namespaces get no netfilter hooks, tables or route/sysctl evidence; grant CAP_SYS_ADMIN, e.g. "+SecurityContext)
	}
	if !s.Has(unix.CAP_SYSLOG) && kallsymsHidden() {
		warnings = append(warnings, "missing CAP_SYSLOG: /proc/kallsyms reads as zeros, so drop locations stay raw addresses; "+
			"grant CAP_SYSLOG, e.g. "+SecurityContext)
	}
	if !s.Has(unix.CAP_SYS_PTRACE) && !canReadNetns(procDir) {
		warnings = append(warnings, "missing CAP_SYS_PTRACE: other processes' /proc/PID/ns/net cannot be read, so namespaces "+
			"held only by processes go unnamed and uncovered; grant CAP_SYS_PTRACE, e.g. "+SecurityContext)
	}
	return warnings, nil
}

// kallsymsHidden tells whether kallsyms shows zero addresses to us.
func kallsymsHidden() bool {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 10 && sc.Scan(); i++ {
		if addr, _, _ := strings.Cut(sc.Text(), " "); strings.Trim(addr, "0") != "" {
			return false
		}
	}
	return true
}

// canReadNetns tells whether kthreadd's namespace link (pid 2, always
// there and never ours) can be read.
func canReadNetns(procDir string) bool {
	_, err := os.Readlink(procDir + "/2/ns/net")
	return err == nil
}
