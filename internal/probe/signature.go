package probe

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// firstParam checks the name of a kernel function's first parameter in
// BTF (vmlinux or a module), to pick between programs written for
// different signatures of the same function.
func firstParam(fn, want string) func() (bool, string) {
	return func() (bool, string) {
		f, err := findFunc(fn)
		if err != nil {
			return false, err.Error()
		}
		proto, ok := f.Type.(*btf.FuncProto)
		if !ok || len(proto.Params) == 0 {
			return false, fn + " has no parameters in BTF"
		}
		if got := proto.Params[0].Name; got != want {
			return false, fmt.Sprintf("%s's first parameter is %q here (program expects %q)", fn, got, want)
		}
		return true, ""
	}
}

func findFunc(name string) (*btf.Func, error) {
	moduleBTF.Lock()
	defer moduleBTF.Unlock()
	var f *btf.Func
	spec, err := kernelBTF().Kernel()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	if err := spec.TypeByName(name, &f); err == nil {
		return f, nil
	}
	cache := kernelBTF()
	mods, err := cache.Modules()
	if err != nil {
		return nil, fmt.Errorf("%s not in kernel BTF", name)
	}
	for _, m := range mods {
		ms, err := cache.Module(m)
		if err != nil {
			continue
		}
		if err := ms.TypeByName(name, &f); err == nil {
			return f, nil
		}
	}
	return nil, errors.New(name + " not in kernel or module BTF (module not loaded?)")
}
