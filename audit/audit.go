// Package audit defines mxc's audit events: one JSON object a line, with
// time, container id, agent identity, kind and detail. Events are appended to
// a file under the container's state dir, followed by `mxc-runtime events
// --audit ID`, and forwarded by the shim as containerd events.
package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Kinds of events.
const (
	KindExec      = "exec"
	KindFSDeny    = "fs.deny"
	KindNetDeny   = "net.deny"
	KindDNSDeny   = "dns.deny"
	KindDNSAllow  = "dns.allow"
	KindOOM       = "oom"
	KindTimeout   = "timeout"
	KindDegraded  = "policy.degraded"
	KindPolicy    = "policy.applied"
	KindGateError = "egress.gate"
)

// FileName is the audit log's name inside a container's state dir.
const FileName = "audit.jsonl"

// Event is one audit record.
type Event struct {
	Time      time.Time         `json:"time"`
	Container string            `json:"container"`
	Agent     string            `json:"agent,omitempty"`
	Kind      string            `json:"kind"`
	Mode      string            `json:"mode,omitempty"` // "audit" when the rule only logged
	Detail    map[string]string `json:"detail,omitempty"`
}

// Writer appends events to one file. It is safe for concurrent use and each
// event is written with a single write(2) on an O_APPEND file, so several
// processes (runtime, egress gate) can share the log without interleaving.
type Writer struct {
	mu        sync.Mutex
	f         *os.File
	container string
	agent     string
}

// Open opens (creating) the audit log at path for appending.
func Open(path, container, agent string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Writer{f: f, container: container, agent: agent}, nil
}

// Append opens the existing audit log at path for appending. The verbs
// that act on a created container (exec) and its helpers use it rather than
// Open: racing with a `delete` of the container, Open would create the log
// (and its state dir) again after the delete removed them, and leave a
// container that is half there.
func Append(path, container, agent string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Writer{f: f, container: container, agent: agent}, nil
}

// Emit writes one event of kind with detail; time, container and agent are filled in.
func (w *Writer) Emit(kind string, detail map[string]string) error {
	return w.Write(Event{Kind: kind, Detail: detail})
}

// Write writes ev, filling in time, container and agent when empty.
func (w *Writer) Write(ev Event) error {
	if w == nil {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Container == "" {
		ev.Container = w.container
	}
	if ev.Agent == "" {
		ev.Agent = w.agent
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.f.Write(b)
	return err
}

// Close closes the file.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	return w.f.Close()
}

// ReadAll returns every event in the log at path (none if it does not exist).
func ReadAll(path string) ([]Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // a torn last line of a crashed writer is skipped, not fatal
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// Follow sends every event of the log at path to fn, then keeps polling for
// new ones until ctx is done or stop returns true. stop is checked each
// poll, after the log has been read to its end (so a stop drains what is
// already written); a receive on wake makes the follower look again at once
// instead of at the next poll, which is how a caller that sets stop gets
// its drain without waiting out the poll interval. wake may be nil.
func Follow(ctx context.Context, path string, poll time.Duration, stop func() bool, wake <-chan struct{}, fn func(Event) error) error {
	t := time.NewTimer(poll)
	defer t.Stop()
	// sleep waits for the next poll, a wake-up or the end of ctx (false).
	sleep := func() bool {
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return false
		case <-wake:
		case <-t.C:
		}
		return true
	}
	var f *os.File
	for f == nil {
		var err error
		f, err = os.Open(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if f != nil {
			break
		}
		if stop != nil && stop() {
			return nil
		}
		if !sleep() {
			return nil
		}
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(partial, line...)
			partial = nil
			var ev Event
			if json.Unmarshal(line, &ev) == nil {
				if err := fn(ev); err != nil {
					return err
				}
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && err != io.EOF {
			return err
		}
		if stop != nil && stop() {
			return nil
		}
		if !sleep() {
			return nil
		}
	}
}
