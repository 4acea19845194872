package shim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path/filepath"
	"strings"
)

// The spare shim's wire format, shared with the C side of `start`
// (shim/faststart). A request is everything a `containerd-shim-mxc-v2
// start` process has that the start depends on; all integers little-endian:
//
//	magic   "MXCSPAR1"
//	dev ino u64 u64    the start binary's /proc/self/exe (st_dev, st_ino)
//	argv    u32 n, then n times u32 len + bytes
//	env     u32 n, then n times u32 len + bytes
//	cwd     u32 len + bytes
//	stdin   u32 len + bytes (the bootstrap parameters)
//
// A reply is u8 status, u8 gone (1: the spare is no longer one, the
// starter spawns the next), u32 len + payload: the BootstrapResult for
// spareOK, the message for spareError, the reason for spareFallback.
const spareMagic = "MXCSPAR1"

// Reply statuses.
const (
	spareOK       byte = 0 // payload is the start's stdout
	spareFallback byte = 1 // nothing was done: run the start in this process
	spareError    byte = 2 // the start failed: payload for stderr, exit 1
)

// Bounds of a request: containerd's own start reads at most 10 MiB of
// bootstrap parameters; command line and environment get generous room.
const (
	spareMaxArgs   = 256
	spareMaxEnv    = 8192
	spareMaxString = 1 << 20
	spareMaxStdin  = 10 << 20
)

// SpareDir holds the spares' sockets and locks, one per containerd address.
const SpareDir = "/run/mxc-shim"

// SpareFlag, first on a command line, makes the shim binary a spare for
// the containerd at the -address that follows.
const SpareFlag = "-mxc-spare"

// spareEnv turns spares off ("0", "off", "false", "no") in the
// environment containerd gives its shims.
const spareEnv = "MXC_SHIM_SPARE"

// spareIdleEnv is how long a spare waits for a start (a Go duration;
// default spareIdleDefault) before it exits.
const spareIdleEnv = "MXC_SHIM_SPARE_IDLE"

// SparePath is the socket of the spare for a containerd address: FNV-1a 64
// of the address, which the C side computes the same way.
func SparePath(address string) string {
	return filepath.Join(SpareDir, spareKey(address)+".sock")
}

func spareKey(address string) string {
	h := fnv.New64a()
	h.Write([]byte(address))
	return fmt.Sprintf("%016x", h.Sum64())
}

// spareOff says whether env (KEY=VALUE entries) turns spares off.
func spareOff(env []string) bool {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], spareEnv+"="); ok {
			switch v {
			case "0", "off", "false", "no":
				return true
			}
			return false
		}
	}
	return false
}

// spareRequest is a start handed to a spare.
type spareRequest struct {
	Dev, Ino uint64
	Args     []string
	Env      []string
	Cwd      string
	Stdin    []byte
}

func (r *spareRequest) encode() []byte {
	b := []byte(spareMagic)
	b = binary.LittleEndian.AppendUint64(b, r.Dev)
	b = binary.LittleEndian.AppendUint64(b, r.Ino)
	list := func(l []string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l)))
		for _, s := range l {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	list(r.Args)
	list(r.Env)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Cwd)))
	b = append(b, r.Cwd...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Stdin)))
	return append(b, r.Stdin...)
}

var errSpareRequest = errors.New("spare request")

// decodeSpareRequest reads one request; every length is checked against
// its bound before anything is allocated.
func decodeSpareRequest(rd io.Reader) (*spareRequest, error) {
	br := bufio.NewReader(rd)
	magic := make([]byte, len(spareMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("%w: magic: %w", errSpareRequest, err)
	}
	if string(magic) != spareMagic {
		return nil, fmt.Errorf("%w: bad magic %q", errSpareRequest, magic)
	}
	var r spareRequest
	u64 := func(what string) (uint64, error) {
		var v [8]byte
		if _, err := io.ReadFull(br, v[:]); err != nil {
			return 0, fmt.Errorf("%w: %s: %w", errSpareRequest, what, err)
		}
		return binary.LittleEndian.Uint64(v[:]), nil
	}
	u32 := func(what string, max uint32) (uint32, error) {
		var v [4]byte
		if _, err := io.ReadFull(br, v[:]); err != nil {
			return 0, fmt.Errorf("%w: %s: %w", errSpareRequest, what, err)
		}
		n := binary.LittleEndian.Uint32(v[:])
		if n > max {
			return 0, fmt.Errorf("%w: %s: %d exceeds %d", errSpareRequest, what, n, max)
		}
		return n, nil
	}
	bytesOf := func(what string, max uint32) ([]byte, error) {
		n, err := u32(what, max)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errSpareRequest, what, err)
		}
		return buf, nil
	}
	list := func(what string, max uint32) ([]string, error) {
		n, err := u32(what+" count", max)
		if err != nil {
			return nil, err
		}
		l := make([]string, 0, n)
		for i := uint32(0); i < n; i++ {
			s, err := bytesOf(what, spareMaxString)
			if err != nil {
				return nil, err
			}
			l = append(l, string(s))
		}
		return l, nil
	}
	var err error
	if r.Dev, err = u64("exe dev"); err != nil {
		return nil, err
	}
	if r.Ino, err = u64("exe ino"); err != nil {
		return nil, err
	}
	if r.Args, err = list("argv", spareMaxArgs); err != nil {
		return nil, err
	}
	if r.Env, err = list("env", spareMaxEnv); err != nil {
		return nil, err
	}
	cwd, err := bytesOf("cwd", spareMaxString)
	if err != nil {
		return nil, err
	}
	r.Cwd = string(cwd)
	if r.Stdin, err = bytesOf("stdin", spareMaxStdin); err != nil {
		return nil, err
	}
	return &r, nil
}

// encodeSpareReply is a reply as the C side reads it.
func encodeSpareReply(status byte, gone bool, payload []byte) []byte {
	b := []byte{status, 0}
	if gone {
		b[1] = 1
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}
