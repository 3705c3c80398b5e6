package session

import (
	"errors"
	"os"

	"github.com/pktdrop/pktdrop/internal/caps"
	"github.com/pktdrop/pktdrop/internal/pods"
)

// ErrNoBTF is returned when the kernel has no BTF.
var ErrNoBTF = errors.New("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): pktdrop needs a kernel built " +
	"with CONFIG_DEBUG_INFO_BTF=y, which most distributions ship since 2021 (Debian 11, Ubuntu 20.10, RHEL 8.2)")

// preflight fails early, in one line, on what would otherwise surface as
// an obscure EPERM or BTF error deep inside loading, and warns of missing
// capabilities pktdrop runs without, at a cost. It checks capabilities
// whatever the uid: root in a container has only those it was given.
func preflight(hostRoot string) ([]string, error) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, ErrNoBTF
	}
	s, err := caps.Effective()
	if err != nil {
		return nil, err
	}
	return caps.Check(s, pods.HostPath(hostRoot, "/proc"))
}
