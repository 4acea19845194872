//go:build linux

package shim

import (
	"context"
	"os"
	"time"

	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"mxc.dev/mxc/internal/helperheap"
)

// Registered here and not by importing the runc shim's task/plugin package:
// both would claim the plugin ID "task" and the shim would panic at start.
func init() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return newTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
		},
	})
}

// Run is the shim's main: containerd starts it as `containerd-shim-mxc-v2
// start|delete|-info ...` and talks ttrpc to the long-running instance.
func Run() {
	if len(os.Args) > 1 && os.Args[1] == SpareFlag {
		runSpare(os.Args[2:]) // returns only as a task's shim, through runShim
		return
	}
	runShim()
}

func runShim() {
	// The long-running shim process starts with the collector off
	// (mxcManager.Start); its own children get containerd's GOGC.
	helperheap.RestoreEnv()
	shim.RunShim(context.Background(), NewManager())
}

// heapSettle is how long the long-running shim process runs with the
// collector off: past its task's creation and start and a short task's
// exit and deletion (a `ctr run --rm` takes ~0.1 s). Then the collector
// runs as containerd's shim code set it (GOGC=40).
const heapSettle = 2 * time.Second
