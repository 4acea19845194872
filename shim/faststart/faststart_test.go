//go:build linux && cgo

package faststart

import (
	"testing"

	"mxc.dev/mxc/shim"
)

// The C start and the Go spare must agree on where the spare listens.
func TestSparePathAgrees(t *testing.T) {
	for _, addr := range []string{
		"/run/containerd/containerd.sock",
		"/tmp/mxc-it/ctd2-ctr/containerd.sock",
		"unix:///run/containerd/containerd.sock",
		"",
		"\xff\xfe tail", // (argv holds no NUL)
		"é/ü",
	} {
		if got, want := sparePath(addr), shim.SparePath(addr); got != want {
			t.Errorf("address %q: C %q, Go %q", addr, got, want)
		}
	}
}
