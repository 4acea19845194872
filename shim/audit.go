package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"mxc.dev/mxc/audit"
)

// AuditTopic is the containerd event topic the shim publishes mxc's audit
// events on. Subscribe with the events API, e.g. the Go client's
// EventService().Subscribe(ctx, `topic=="/mxc/audit"`).
const AuditTopic = "/mxc/audit"

// AuditEventTypeURL is the type URL of the events on AuditTopic. The Any's
// value is the JSON of one mxc.dev/mxc/audit.Event -- the audit log's own
// line format -- so a subscriber in any language decodes it with a JSON
// parser (Go: DecodeAuditEvent). `ctr events` skips
// events whose type it does not know, these included.
const AuditEventTypeURL = "mxc.dev/mxc/audit.Event"

// AuditPoll is how often a follower looks for new lines in an audit log.
const AuditPoll = 200 * time.Millisecond

// Publisher is the part of containerd's event publisher the forwarder uses.
type Publisher interface {
	Publish(ctx context.Context, topic string, event any) error
}

// publisherFunc adapts containerd's shim publisher (whose event parameter is
// the named type events.Event) to Publisher.
type publisherFunc func(ctx context.Context, topic string, event any) error

func (f publisherFunc) Publish(ctx context.Context, topic string, event any) error {
	return f(ctx, topic, event)
}

// auditForwarder follows one audit log per task and publishes its events.
type auditForwarder struct {
	ctx  context.Context // carries the containerd namespace the envelopes need
	pub  Publisher
	poll time.Duration

	mu        sync.Mutex
	followers map[string]*follower
}

type follower struct {
	stop   atomic.Bool
	wake   chan struct{} // closed by stop: drain now, not at the next poll
	cancel context.CancelFunc
	done   chan struct{}
}

func newAuditForwarder(ctx context.Context, pub Publisher) *auditForwarder {
	return &auditForwarder{ctx: ctx, pub: pub, poll: AuditPoll, followers: map[string]*follower{}}
}

// start follows path for container id until stop(id). Starting an id that is
// already followed is a no-op (a restarted task keeps one follower).
func (a *auditForwarder) start(id, path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.followers[id]; ok {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	f := &follower{cancel: cancel, wake: make(chan struct{}), done: make(chan struct{})}
	a.followers[id] = f
	go func() {
		defer close(f.done)
		err := audit.Follow(ctx, path, a.poll, f.stop.Load, f.wake, func(ev audit.Event) error {
			a.publish(ev)
			return nil
		})
		if err != nil {
			log.G(a.ctx).WithError(err).WithField("id", id).Warn("mxc: following audit log stopped")
		}
	}()
}

// stop drains what the log holds now (audit.Follow reads to EOF before it
// looks at the stop flag), then ends the follower. The follower is woken at
// once: a task's deletion (ctr run --rm, every CRI container removal) must
// not wait for the next poll. It waits at most timeout for the drain, so a
// stuck publisher cannot block the task's deletion.
func (a *auditForwarder) stop(id string, timeout time.Duration) {
	a.mu.Lock()
	f, ok := a.followers[id]
	delete(a.followers, id)
	a.mu.Unlock()
	if !ok {
		return
	}
	f.stop.Store(true)
	close(f.wake)
	select {
	case <-f.done:
	case <-time.After(timeout):
		log.G(a.ctx).WithField("id", id).Warn("mxc: audit log drain timed out")
	}
	f.cancel()
	<-f.done
}

// stopAll ends every follower (shim shutdown).
func (a *auditForwarder) stopAll(timeout time.Duration) {
	a.mu.Lock()
	ids := make([]string, 0, len(a.followers))
	for id := range a.followers {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.stop(id, timeout)
	}
}

func (a *auditForwarder) publish(ev audit.Event) {
	msg, err := EncodeAuditEvent(ev)
	if err != nil {
		log.G(a.ctx).WithError(err).Warn("mxc: audit event not encodable")
		return
	}
	if err := a.pub.Publish(a.ctx, AuditTopic, msg); err != nil {
		// containerd's publisher queues and retries failed events itself
		log.G(a.ctx).WithError(err).WithField("kind", ev.Kind).Warn("mxc: publish audit event")
	}
}

// EncodeAuditEvent is the wire form of an audit event on AuditTopic. An Any
// is passed to containerd's publisher as it is (typeurl does not re-encode
// one), so no global type registration is needed.
func EncodeAuditEvent(ev audit.Event) (*anypb.Any, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return &anypb.Any{TypeUrl: AuditEventTypeURL, Value: b}, nil
}

// DecodeAuditEvent reads an event received on AuditTopic.
func DecodeAuditEvent(v typeurl.Any) (audit.Event, error) {
	var ev audit.Event
	if v == nil || v.GetTypeUrl() != AuditEventTypeURL {
		return ev, fmt.Errorf("not an mxc audit event (type %q, want %q)", typeURL(v), AuditEventTypeURL)
	}
	if err := json.Unmarshal(v.GetValue(), &ev); err != nil {
		return ev, fmt.Errorf("decode audit event: %w", err)
	}
	return ev, nil
}

func typeURL(v typeurl.Any) string {
	if v == nil {
		return ""
	}
	return v.GetTypeUrl()
}
