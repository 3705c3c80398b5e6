package session

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrPrivileges is returned when pktdrop cannot load BPF programs.
var ErrPrivileges = errors.New("pktdrop needs root, or the capabilities CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN " +
	"(CAP_SYS_ADMIN on kernels before 5.8); in Kubernetes run it in a debug pod with " +
	"securityContext: {privileged: true} (or capabilities: {add: [BPF, PERFMON, NET_ADMIN, SYS_ADMIN]}) and hostNetwork: true")

// ErrNoBTF is returned when the kernel has no BTF.
var ErrNoBTF = errors.New("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): pktdrop needs a kernel built " +
	"with CONFIG_DEBUG_INFO_BTF=y, which most distributions ship since 2021 (Debian 11, Ubuntu 20.10, RHEL 8.2)")

// preflight fails early, in one line, on what would otherwise surface as
// an obscure EPERM or BTF error deep inside loading.
func preflight() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return ErrNoBTF
	}
	if os.Geteuid() == 0 {
		return nil
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) && has(unix.CAP_NET_ADMIN) {
		return nil
	}
	if has(unix.CAP_BPF) && has(unix.CAP_PERFMON) && has(unix.CAP_NET_ADMIN) {
		return nil
	}
	return ErrPrivileges
}
