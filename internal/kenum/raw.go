package kenum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
)

// vmlinuxBTF is the running kernel's BTF blob.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// Load reads the enums from the kernel's BTF. It walks the raw blob
// rather than a decoded btf.Spec: these enums are found by a member name,
// which with a Spec means decoding every type of the kernel (some 20 MiB
// of Go objects, at the moment pktdrop's memory peaks), when a scan of
// the raw records needs nothing but the blob.
func Load() (*Names, error) {
	raw, err := os.ReadFile(vmlinuxBTF)
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	n, err := FromRaw(raw)
	if errors.Is(err, errUnknownKind) {
		// A kind newer than this scanner: let cilium/ebpf decode it.
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("load kernel BTF: %w", err)
		}
		return FromSpec(spec)
	}
	return n, err
}

var errUnknownKind = errors.New("unknown BTF kind")

// rawEnum is one enum of a raw BTF blob: its values' names and values.
type rawEnum struct {
	names  []uint32 // offsets in the string section
	values []uint64
}

// FromRaw reads the enums from a raw BTF blob (the format of
// /sys/kernel/btf/vmlinux, in this machine's byte order).
func FromRaw(raw []byte) (*Names, error) {
	enums, str, err := scanEnums(raw)
	if err != nil {
		return nil, err
	}
	name := func(off uint32) string {
		if int(off) >= len(str) {
			return ""
		}
		s := str[off:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return string(s)
	}
	each := func(member string, fn func(string, uint64)) error {
		for _, e := range enums {
			found := false
			for _, off := range e.names {
				if name(off) == member {
					found = true
					break
				}
			}
			if !found {
				continue
			}
			for i, off := range e.names {
				fn(name(off), e.values[i])
			}
			return nil
		}
		return fmt.Errorf("kernel BTF has no enum with %s", member)
	}
	return fromEnums(each)
}

// scanEnums walks the type records of raw and keeps the enums.
func scanEnums(raw []byte) ([]rawEnum, []byte, error) {
	bo := binary.NativeEndian
	if len(raw) < 24 || bo.Uint16(raw) != 0xeB9F {
		return nil, nil, errors.New("not BTF in this machine's byte order")
	}
	hdrLen := bo.Uint32(raw[4:])
	typeOff, typeLen := bo.Uint32(raw[8:]), bo.Uint32(raw[12:])
	strOff, strLen := bo.Uint32(raw[16:]), bo.Uint32(raw[20:])
	ts, te := uint64(hdrLen)+uint64(typeOff), uint64(hdrLen)+uint64(typeOff)+uint64(typeLen)
	ss, se := uint64(hdrLen)+uint64(strOff), uint64(hdrLen)+uint64(strOff)+uint64(strLen)
	if te > uint64(len(raw)) || se > uint64(len(raw)) {
		return nil, nil, errors.New("BTF sections out of bounds")
	}
	types, str := raw[ts:te], raw[ss:se]
	var enums []rawEnum
	for off := 0; off+12 <= len(types); {
		info := bo.Uint32(types[off+4:])
		kind, vlen := (info>>24)&0x1f, int(info&0xffff)
		off += 12
		var extra int
		switch kind {
		case 2, 7, 8, 9, 10, 11, 12, 16, 18: // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
		case 1, 14, 17: // INT VAR DECL_TAG
			extra = 4
		case 3: // ARRAY
			extra = 12
		case 4, 5, 15: // STRUCT UNION DATASEC
			extra = 12 * vlen
		case 13: // FUNC_PROTO
			extra = 8 * vlen
		case 6, 19: // ENUM, ENUM64
			size := 8
			if kind == 19 {
				size = 12
			}
			extra = size * vlen
			if off+extra > len(types) {
				return nil, nil, errors.New("BTF enum out of bounds")
			}
			e := rawEnum{names: make([]uint32, vlen), values: make([]uint64, vlen)}
			for i := range vlen {
				rec := types[off+i*size:]
				e.names[i] = bo.Uint32(rec)
				e.values[i] = uint64(bo.Uint32(rec[4:]))
				if kind == 19 {
					e.values[i] |= uint64(bo.Uint32(rec[8:])) << 32
				}
			}
			enums = append(enums, e)
		default:
			return nil, nil, fmt.Errorf("%w %d", errUnknownKind, kind)
		}
		off += extra
	}
	return enums, str, nil
}
