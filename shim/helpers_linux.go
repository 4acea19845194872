//go:build linux

package shim

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/log"

	"mxc.dev/mxc/internal/monitorwatch"
)

// ensureTimeout bounds one `mxc-runtime policy-ensure`.
const ensureTimeout = time.Minute

// helperWatchers follow each task's policy monitor and have the runtime
// restart it when it dies before its container (monitorwatch): the shim
// is the one process that lives as long as the container, so without it
// only the container's next exec would bring the timeout watch back.
type helperWatchers struct {
	ctx   context.Context
	mu    sync.Mutex
	stops map[string]chan struct{}
	wg    sync.WaitGroup
}

func newHelperWatchers(ctx context.Context) *helperWatchers {
	return &helperWatchers{ctx: ctx, stops: map[string]chan struct{}{}}
}

// start follows the monitor of task id, whose state is in stateDir; ensure
// restarts it. A task without a monitor ends its watch at once.
func (h *helperWatchers) start(id, stateDir string, ensure func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.stops[id]; ok {
		return
	}
	stop := make(chan struct{})
	h.stops[id] = stop
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		monitorwatch.Watch(stop, stateDir, ensure, monitorwatch.Options{
			Logf: func(format string, args ...any) { log.G(h.ctx).Warnf("mxc: "+format, args...) },
		})
	}()
}

// stop ends the watch of task id.
func (h *helperWatchers) stop(id string) {
	h.mu.Lock()
	stop, ok := h.stops[id]
	delete(h.stops, id)
	h.mu.Unlock()
	if ok {
		close(stop)
	}
}

// stopAll ends every watch and waits for them.
func (h *helperWatchers) stopAll() {
	h.mu.Lock()
	for id, stop := range h.stops {
		close(stop)
		delete(h.stops, id)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// ensureCommand returns the restart of task id's helpers: `mxc-runtime
// --root ROOT/NAMESPACE policy-ensure ID`, as the runc shim code runs the
// runtime's other verbs (the node config comes from MXC_CONFIG, which
// useNodeConfig set for the whole shim process).
func ensureCommand(binary, root, namespace, id string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, "--root", filepath.Join(root, namespace), "policy-ensure", id).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s policy-ensure %s: %w: %s", binary, id, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}
