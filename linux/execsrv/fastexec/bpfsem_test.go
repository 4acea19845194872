//go:build linux && cgo

package fastexec

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// runc's libcontainer builds the ENOSYS stub it prepends to a spec's
// seccomp program by iterating over a map of architectures
// (seccomp/patchbpf.generateEnosysStub), so two compilations of one
// profile can differ in the order of the stub's per-architecture blocks.
// The C step loads the program the host compiled once (Precompile), the
// Go step compiles its own: byte equality is then too strict, and the
// test compares what the programs decide instead, by running both over
// the seccomp_data inputs that matter.

// bpfInsn is a struct sock_filter.
type bpfInsn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

// parseFilter reads a filter as seccompFilters prints it ("flags=F HEX").
func parseFilter(s string) (flags string, prog []bpfInsn, err error) {
	flags, hx, ok := strings.Cut(s, " ")
	if !ok {
		return "", nil, fmt.Errorf("filter %q: no program", s)
	}
	raw, err := hex.DecodeString(hx)
	if err != nil || len(raw)%8 != 0 {
		return "", nil, fmt.Errorf("filter %.40q: bad program", s)
	}
	for i := 0; i < len(raw); i += 8 {
		prog = append(prog, bpfInsn{
			code: binary.NativeEndian.Uint16(raw[i:]), jt: raw[i+2], jf: raw[i+3],
			k: binary.NativeEndian.Uint32(raw[i+4:]),
		})
	}
	return flags, prog, nil
}

// runBPF is the kernel's classic BPF interpreter for the subset seccomp
// accepts (net/core/filter.c, seccomp_check_filter), over a 64-byte
// struct seccomp_data.
func runBPF(prog []bpfInsn, data []byte) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		src := in.k
		if in.code&0x08 != 0 { // BPF_X
			src = x
		}
		switch in.code & 0x07 {
		case 0x00: // BPF_LD
			switch in.code & 0xe0 {
			case 0x20: // BPF_ABS
				if in.code&0x18 != 0x00 || in.k%4 != 0 || int(in.k)+4 > len(data) {
					return 0, fmt.Errorf("pc %d: load %#x at %d", pc, in.code, in.k)
				}
				a = binary.NativeEndian.Uint32(data[in.k:])
			case 0x00: // BPF_IMM
				a = in.k
			case 0x60: // BPF_MEM
				a = mem[in.k&15]
			case 0x80: // BPF_LEN
				a = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: ld mode %#x", pc, in.code)
			}
		case 0x01: // BPF_LDX
			switch in.code & 0xe0 {
			case 0x00:
				x = in.k
			case 0x60:
				x = mem[in.k&15]
			case 0x80:
				x = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: ldx mode %#x", pc, in.code)
			}
		case 0x02: // BPF_ST
			mem[in.k&15] = a
		case 0x03: // BPF_STX
			mem[in.k&15] = x
		case 0x04: // BPF_ALU
			switch in.code & 0xf0 {
			case 0x00:
				a += src
			case 0x10:
				a -= src
			case 0x20:
				a *= src
			case 0x30:
				if src == 0 {
					return 0, nil
				}
				a /= src
			case 0x40:
				a |= src
			case 0x50:
				a &= src
			case 0x60:
				a <<= src & 31
			case 0x70:
				a >>= src & 31
			case 0x80:
				a = -a
			case 0x90:
				if src == 0 {
					return 0, nil
				}
				a %= src
			case 0xa0:
				a ^= src
			default:
				return 0, fmt.Errorf("pc %d: alu %#x", pc, in.code)
			}
		case 0x05: // BPF_JMP
			var cond bool
			switch in.code & 0xf0 {
			case 0x00: // BPF_JA
				pc += int(in.k)
				continue
			case 0x10:
				cond = a == src
			case 0x20:
				cond = a > src
			case 0x30:
				cond = a >= src
			case 0x40:
				cond = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: jmp %#x", pc, in.code)
			}
			if cond {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case 0x06: // BPF_RET
			if in.code&0x18 == 0x10 { // BPF_A
				return a, nil
			}
			return in.k, nil
		case 0x07: // BPF_MISC
			if in.code&0xf8 == 0x00 { // TAX
				x = a
			} else { // TXA
				a = x
			}
		}
	}
	return 0, fmt.Errorf("fell off the end of a %d-instruction program", len(prog))
}

// seccompInputs are the inputs the equivalence is checked on: every
// architecture the programs test for (and one they do not), every syscall
// number up to past the last one any table knows, the x32 range, and the
// numbers and argument values the programs compare against, with their
// neighbours.
func seccompInputs(progs ...[]bpfInsn) [][]byte {
	consts := map[uint32]bool{0: true, 1: true, 0xffffffff: true}
	archs := map[uint32]bool{0x12345678: true}
	for _, p := range progs {
		for _, in := range p {
			if in.code&0x07 == 0x05 && in.code&0xf0 != 0 && in.code&0x08 == 0 {
				consts[in.k], consts[in.k-1], consts[in.k+1] = true, true, true
				if in.k&0xc0000000 != 0 && in.k&0xffff0000 != 0x40000000 {
					archs[in.k] = true // an AUDIT_ARCH_* (64-bit or LE flag set)
				}
			}
		}
	}
	nrs := map[uint32]bool{}
	for nr := uint32(0); nr < 1024; nr++ {
		nrs[nr], nrs[0x40000000|nr] = true, true
	}
	for c := range consts {
		nrs[c] = true
	}
	var argSets [][6]uint64
	argSets = append(argSets, [6]uint64{}, [6]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)})
	for c := range consts {
		v := uint64(c)
		argSets = append(argSets, [6]uint64{v, v, v, v, v, v}, [6]uint64{v << 32, v << 32, v << 32, v << 32, v << 32, v << 32})
	}
	var out [][]byte
	for arch := range archs {
		for nr := range nrs {
			for i, args := range argSets {
				// Arguments only matter for the numbers a program compares
				// against; elsewhere the zero and all-ones sets suffice.
				if i > 1 && !consts[nr] {
					continue
				}
				d := make([]byte, 64)
				binary.NativeEndian.PutUint32(d[0:], nr)
				binary.NativeEndian.PutUint32(d[4:], arch)
				binary.NativeEndian.PutUint64(d[8:], 0x7f0000001000)
				for j, v := range args {
					binary.NativeEndian.PutUint64(d[16+8*j:], v)
				}
				out = append(out, d)
			}
		}
	}
	return out
}

// sameFilters reports whether two filter lists (as seccompFilters prints
// them) decide alike: equal, or equal flags and programs that return the
// same verdict for every input of seccompInputs.
func sameFilters(c, g []string) error {
	if len(c) != len(g) {
		return fmt.Errorf("%d filters, want %d", len(c), len(g))
	}
	for i := range c {
		if c[i] == g[i] {
			continue
		}
		cf, cp, err := parseFilter(c[i])
		if err != nil {
			return err
		}
		gf, gp, err := parseFilter(g[i])
		if err != nil {
			return err
		}
		if cf != gf {
			return fmt.Errorf("filter %d: %s, want %s", i, cf, gf)
		}
		for _, in := range seccompInputs(cp, gp) {
			cv, cerr := runBPF(cp, in)
			gv, gerr := runBPF(gp, in)
			if cerr != nil || gerr != nil {
				return fmt.Errorf("filter %d: %v / %v", i, cerr, gerr)
			}
			if cv != gv {
				return fmt.Errorf("filter %d: nr %d arch %#x args %x: verdict %#x, want %#x", i,
					binary.NativeEndian.Uint32(in), binary.NativeEndian.Uint32(in[4:]), in[16:], cv, gv)
			}
		}
	}
	return nil
}

// TestSameFilters: the comparison tells a reordered program from a
// different one.
func TestSameFilters(t *testing.T) {
	enc := func(p []bpfInsn) string {
		b := make([]byte, 8*len(p))
		for i, in := range p {
			binary.NativeEndian.PutUint16(b[8*i:], in.code)
			b[8*i+2], b[8*i+3] = in.jt, in.jf
			binary.NativeEndian.PutUint32(b[8*i+4:], in.k)
		}
		return "flags=0x0 " + hex.EncodeToString(b)
	}
	const ldNR, ldArch, jeq, retK = 0x20, 0x20, 0x15, 0x06
	// arch x86_64 -> nr 1 -> ERRNO, else ALLOW; arch i386 -> KILL
	a := []bpfInsn{{ldArch, 0, 0, 4}, {jeq, 0, 3, 0xc000003e}, {ldNR, 0, 0, 0}, {jeq, 0, 3, 1}, {retK, 0, 0, 0x50001}, {jeq, 0, 1, 0x40000003}, {retK, 0, 0, 0}, {retK, 0, 0, 0x7fff0000}}
	// the same decisions, the arch blocks in the other order
	b := []bpfInsn{{ldArch, 0, 0, 4}, {jeq, 0, 1, 0x40000003}, {retK, 0, 0, 0}, {jeq, 0, 3, 0xc000003e}, {ldNR, 0, 0, 0}, {jeq, 0, 1, 1}, {retK, 0, 0, 0x50001}, {retK, 0, 0, 0x7fff0000}}
	// nr 2 instead of 1
	d := append([]bpfInsn{}, a...)
	d[3].k = 2
	if err := sameFilters([]string{enc(a)}, []string{enc(b)}); err != nil {
		t.Errorf("reordered program: %v", err)
	}
	if err := sameFilters([]string{enc(a)}, []string{enc(d)}); err == nil {
		t.Error("a different program compared equal")
	}
}
