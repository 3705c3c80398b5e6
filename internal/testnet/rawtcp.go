package testnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// TCP flag bits for SendTCP.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// SendTCP sends one bare IPv4 TCP segment with the given flags from this
// namespace, outside any connection: what a middlebox's conntrack, having
// seen no handshake, finds INVALID (a SYN-ACK from nowhere, say).
func (ns *NS) SendTCP(src, dst string, sport, dport int, flags uint8) error {
	s, err := netip.ParseAddr(src)
	if err != nil {
		return err
	}
	d, err := netip.ParseAddr(dst)
	if err != nil {
		return err
	}
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], uint16(sport))
	binary.BigEndian.PutUint16(seg[2:], uint16(dport))
	binary.BigEndian.PutUint32(seg[4:], 0x01020304)
	binary.BigEndian.PutUint32(seg[8:], 0x05060708)
	seg[12] = 5 << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 64240)
	binary.BigEndian.PutUint16(seg[16:], tcpChecksum(s.As4(), d.As4(), seg))
	return ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, seg, 0, &unix.SockaddrInet4{Addr: d.As4()}); err != nil {
			return fmt.Errorf("send tcp to %s: %w", dst, err)
		}
		return nil
	})
}

func tcpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += unix.IPPROTO_TCP + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
