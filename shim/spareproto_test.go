package shim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleSpareRequest() *spareRequest {
	return &spareRequest{
		Dev: 0x803, Ino: 123456,
		Args:  []string{"/usr/local/bin/containerd-shim-mxc-v2", "-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock", "-publish-binary", "", "-id", "abc", "start"},
		Env:   []string{"PATH=/usr/bin", "TTRPC_ADDRESS=/run/containerd/containerd.sock.ttrpc", "EMPTY="},
		Cwd:   "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc",
		Stdin: []byte{0x0a, 0x03, 'a', 'b', 'c', 0x00, 0xff},
	}
}

func TestSpareRequestRoundTrip(t *testing.T) {
	for _, r := range []*spareRequest{sampleSpareRequest(), {Args: []string{}, Env: []string{}, Stdin: []byte{}}} {
		got, err := decodeSpareRequest(bytes.NewReader(r.encode()))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, r)
		}
	}
}

func TestDecodeSpareRequestRefuses(t *testing.T) {
	good := sampleSpareRequest().encode()
	// the offset of argv's count: magic, dev, ino
	argc := len(spareMagic) + 16
	tooMany := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(tooMany[argc:], spareMaxArgs+1)
	hugeArg := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(hugeArg[argc+4:], spareMaxString+1)
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty (a probe)":      {nil, "magic"},
		"bad magic":            {append([]byte("MXCSPAR0"), good[8:]...), "bad magic"},
		"truncated":            {good[:len(good)-1], "stdin"},
		"too many arguments":   {tooMany, "exceeds"},
		"an argument too long": {hugeArg, "exceeds"},
	} {
		_, err := decodeSpareRequest(bytes.NewReader(tc.in))
		if !errors.Is(err, errSpareRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
	}
}

func FuzzDecodeSpareRequest(f *testing.F) {
	f.Add(sampleSpareRequest().encode())
	f.Add([]byte(spareMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeSpareRequest(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(r.Args) > spareMaxArgs || len(r.Env) > spareMaxEnv || len(r.Stdin) > spareMaxStdin {
			t.Fatalf("bounds not kept: %d args, %d env, %d stdin", len(r.Args), len(r.Env), len(r.Stdin))
		}
		// What was decoded encodes back to the bytes it was read from.
		if enc := r.encode(); !bytes.Equal(enc, in[:len(enc)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func TestSpareReply(t *testing.T) {
	b := encodeSpareReply(spareError, true, []byte("boom"))
	want := []byte{spareError, 1, 4, 0, 0, 0, 'b', 'o', 'o', 'm'}
	if !bytes.Equal(b, want) {
		t.Errorf("reply %v, want %v", b, want)
	}
}

func TestSpareOff(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"MXC_SHIM_SPARE=0"}, true},
		{[]string{"MXC_SHIM_SPARE=off"}, true},
		{[]string{"MXC_SHIM_SPARE=1"}, false},
		{[]string{"MXC_SHIM_SPARE="}, false},
		{[]string{"MXC_SHIM_SPARE=0", "MXC_SHIM_SPARE=1"}, false}, // the last one counts
		{[]string{"MXC_SHIM_SPARE_IDLE=0"}, false},
	} {
		if got := spareOff(tc.env); got != tc.want {
			t.Errorf("spareOff(%q) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestSparePath(t *testing.T) {
	a, b := SparePath("/run/containerd/containerd.sock"), SparePath("/run/containerd/containerd.sock2")
	if a == b || !strings.HasPrefix(a, SpareDir+"/") || !strings.HasSuffix(a, ".sock") {
		t.Errorf("spare paths %q, %q", a, b)
	}
	// FNV-1a 64 of "a" (the C side's test checks it computes the same)
	if got := spareKey("a"); got != "af63dc4c8601ec8c" {
		t.Errorf("spareKey(a) = %s", got)
	}
}
