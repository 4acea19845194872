package shim

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	"mxc.dev/mxc/audit"
)

type recorder struct {
	mu     sync.Mutex
	topics []string
	events []audit.Event
}

func (r *recorder) Publish(_ context.Context, topic string, ev any) error {
	a := ev.(*anypb.Any)
	e, err := DecodeAuditEvent(a)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = append(r.topics, topic)
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []string
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return k
}

func TestEncodeDecodeAuditEvent(t *testing.T) {
	ev := audit.Event{Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Container: "c1", Agent: "a",
		Kind: audit.KindNetDeny, Mode: "audit", Detail: map[string]string{"dst": "192.0.2.1:443"}}
	a, err := EncodeAuditEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetTypeUrl() != AuditEventTypeURL {
		t.Fatalf("type url %q", a.GetTypeUrl())
	}
	got, err := DecodeAuditEvent(a)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(ev.Time) || got.Container != "c1" || got.Detail["dst"] != "192.0.2.1:443" || got.Mode != "audit" {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := DecodeAuditEvent(&anypb.Any{TypeUrl: "x"}); err == nil {
		t.Fatal("foreign type accepted")
	}
	if _, err := DecodeAuditEvent(nil); err == nil {
		t.Fatal("nil accepted")
	}
	if _, err := DecodeAuditEvent(&anypb.Any{TypeUrl: AuditEventTypeURL, Value: []byte("{")}); err == nil {
		t.Fatal("bad json accepted")
	}
}

// The forwarder publishes what is in the log, what is appended later, and on
// stop drains what was written right before it -- even when the runtime has
// already removed the file (the follower keeps it open).
func TestAuditForwarder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ns", "c1", audit.FileName)
	w := openLog(t, path)
	rec := &recorder{}
	fw := newAuditForwarder(ctx, rec)
	fw.poll = 10 * time.Millisecond
	fw.start("c1", path)
	fw.start("c1", path) // idempotent
	waitKinds(t, rec, 1)
	if err := w.Emit(audit.KindExec, map[string]string{"argv": "sh"}); err != nil {
		t.Fatal(err)
	}
	waitKinds(t, rec, 2)
	if err := w.Emit(audit.KindNetDeny, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	fw.stop("c1", 5*time.Second)
	got := rec.kinds()
	want := []string{audit.KindPolicy, audit.KindExec, audit.KindNetDeny}
	if len(got) != len(want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("published %v, want %v", got, want)
		}
	}
	for _, tp := range rec.topics {
		if tp != AuditTopic {
			t.Fatalf("topic %q", tp)
		}
	}
	if rec.events[1].Agent != "agent-1" || rec.events[1].Container != "c1" {
		t.Fatalf("event fields: %+v", rec.events[1])
	}
	fw.stop("c1", time.Second) // unknown id: no-op
}

// A log that never appears does not hold up stop, even with a poll interval
// (and a drain timeout) far longer than the test may take: stop wakes the
// follower instead of waiting for its next poll.
func TestAuditForwarderNoLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &recorder{}
	fw := newAuditForwarder(ctx, rec)
	fw.poll = time.Hour
	fw.start("x", filepath.Join(t.TempDir(), "missing", audit.FileName))
	fw.start("y", filepath.Join(t.TempDir(), "missing", audit.FileName))
	done := make(chan struct{})
	go func() { fw.stopAll(time.Hour); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("stopAll hung")
	}
	if n := len(rec.kinds()); n != 0 {
		t.Fatalf("published %d events from no log", n)
	}
}

// stop drains an event written while the follower sleeps, without waiting
// for the next poll (a task's deletion waits for this drain).
func TestAuditForwarderStopWakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "c1", audit.FileName)
	w := openLog(t, path)
	rec := &recorder{}
	fw := newAuditForwarder(ctx, rec)
	fw.poll = time.Hour
	fw.start("c1", path)
	waitKinds(t, rec, 1) // read to the end; now asleep for an hour
	if err := w.Emit(audit.KindTimeout, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { fw.stop("c1", time.Hour); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("stop waited for the next poll")
	}
	if got := rec.kinds(); len(got) != 2 || got[1] != audit.KindTimeout {
		t.Fatalf("published %v, want policy then timeout", got)
	}
}

// openLog opens the audit log of container c1 at path with one event in it.
func openLog(t *testing.T, path string) *audit.Writer {
	t.Helper()
	w, err := audit.Open(path, "c1", "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Emit(audit.KindPolicy, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

func waitKinds(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.kinds()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %v, want %d events", r.kinds(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
