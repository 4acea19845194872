//go:build linux

package shim

import (
	"sync"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
)

// The warm-up only fills protobuf's per-type tables: messages still
// round-trip, also when a request's decoding races it.
func TestWarmProtoThenRoundTrip(t *testing.T) {
	in := &taskAPI.CreateTaskRequest{ID: "t1", Bundle: "/b", Rootfs: []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro"}}}}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); warmProto() }()
	var out taskAPI.CreateTaskRequest
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	warmProto() // again: a no-op
	if !proto.Equal(in, &out) {
		t.Fatalf("round trip: %v, want %v", &out, in)
	}
}
