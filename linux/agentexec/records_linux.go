//go:build linux

package agentexec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The last step's configuration, and the `sandbox` verb's cached plans,
// are record files the C half (package fastexec) reads without a JSON
// parser: a header, then records of a type and a length.
//
//	header  u32 magic, u32 version (1), u64 total length (header included)
//	record  u32 type, u32 length, payload[length]
//
// Numbers are in the machine's byte order (writer and reader are the
// same binary on the same machine). Records come in non-decreasing type
// order, each singleton type at most once, so that a file has exactly one
// encoding (the C decoder's fuzz test relies on it). Payloads:
//
//	RecJSON      the Go step's Config as JSON (the reference, and what the
//	             Go step runs when the C step does not)
//	RecCPlan     u32 flags (CPlanRequire), u32 0: the records below are
//	             complete and the C step may apply them
//	RecLandlock  u32 minABI, u32 planABI, u32 attrSize, u32 apply (0/1),
//	             u64 handledFS, u64 scoped, u64 restrictSelf flags: the
//	             ruleset as landlock.Ruleset.Apply builds it on planABI
//	RecLLRule    u64 access, the path (no NUL)
//	RecSeccomp   u32 seccomp(2) flags, u32 0, sock_filter[] (8 bytes each):
//	             one filter, in installation order
//	RecSBKey     sandbox plan: the 32-byte cache key it was written for
//	RecSBFlags   u32 flags (SBHostNet), u32 0, u64 capability mask kept
//	RecSBRW      a readwritePaths entry
//	RecSBDeny    a deniedPaths entry
const (
	ConfigMagic  uint32 = 0x3141584d // "MXA1"
	SandboxMagic uint32 = 0x3153584d // "MXS1"
	RecVersion   uint32 = 1

	RecJSON     uint32 = 1
	RecCPlan    uint32 = 2
	RecLandlock uint32 = 3
	RecLLRule   uint32 = 4
	RecSeccomp  uint32 = 5
	RecSBKey    uint32 = 6
	RecSBFlags  uint32 = 7
	RecSBRW     uint32 = 8
	RecSBDeny   uint32 = 9

	// CPlanRequire: the C step must run this plan (fail rather than hand
	// over to the Go step); for tests and benchmarks.
	CPlanRequire uint32 = 1
	// SBHostNet: the sandbox keeps the host's network namespace.
	SBHostNet uint32 = 1

	// MaxRecordsSize bounds a record file (as the Go step's 16 MiB read).
	MaxRecordsSize = 16 << 20
	headerSize     = 16
	recHeaderSize  = 8
)

// Records builds a record file.
type Records struct{ buf []byte }

// NewRecords starts a record file with magic.
func NewRecords(magic uint32) *Records {
	r := &Records{buf: make([]byte, headerSize, 4096)}
	binary.NativeEndian.PutUint32(r.buf[0:], magic)
	binary.NativeEndian.PutUint32(r.buf[4:], RecVersion)
	return r
}

// Add appends one record whose payload is the concatenation of parts.
func (r *Records) Add(typ uint32, parts ...[]byte) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var h [recHeaderSize]byte
	binary.NativeEndian.PutUint32(h[0:], typ)
	binary.NativeEndian.PutUint32(h[4:], uint32(n))
	r.buf = append(r.buf, h[:]...)
	for _, p := range parts {
		r.buf = append(r.buf, p...)
	}
}

// Append appends o's records (not its header) to r.
func (r *Records) Append(o *Records) { r.buf = append(r.buf, o.buf[headerSize:]...) }

// Bytes returns the file; r may not be used after.
func (r *Records) Bytes() []byte {
	binary.NativeEndian.PutUint64(r.buf[8:], uint64(len(r.buf)))
	return r.buf
}

// U16, U32 and U64 render numbers for record payloads.
func U16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func U32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func U64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// Record is one decoded record; Payload aliases the file's bytes.
type Record struct {
	Type    uint32
	Payload []byte
}

// ParseRecords splits a record file with magic into its records, checking
// the header and the bounds only (the C decoder checks the payloads).
func ParseRecords(data []byte, magic uint32) ([]Record, error) {
	if len(data) < headerSize || len(data) > MaxRecordsSize {
		return nil, fmt.Errorf("record file of %d bytes", len(data))
	}
	if m := binary.NativeEndian.Uint32(data[0:]); m != magic {
		return nil, fmt.Errorf("record file magic %#x, want %#x", m, magic)
	}
	if v := binary.NativeEndian.Uint32(data[4:]); v != RecVersion {
		return nil, fmt.Errorf("record file version %d, want %d", v, RecVersion)
	}
	if t := binary.NativeEndian.Uint64(data[8:]); t != uint64(len(data)) {
		return nil, fmt.Errorf("record file says %d bytes, has %d", t, len(data))
	}
	var out []Record
	for pos := headerSize; pos < len(data); {
		if len(data)-pos < recHeaderSize {
			return nil, errors.New("truncated record header")
		}
		typ := binary.NativeEndian.Uint32(data[pos:])
		n := int(binary.NativeEndian.Uint32(data[pos+4:]))
		pos += recHeaderSize
		if n > len(data)-pos {
			return nil, errors.New("truncated record")
		}
		out = append(out, Record{Type: typ, Payload: data[pos : pos+n : pos+n]})
		pos += n
	}
	return out, nil
}
