//go:build linux

package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/containerd/v2/core/mount"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/version"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"

	"mxc.dev/mxc/internal/helperheap"
)

// RuntimeName is the runtime_type containerd knows this shim by; containerd
// maps it to the binary name containerd-shim-mxc-v2.
const RuntimeName = "io.containerd.mxc.v2"

// mxcManager is the runc shim's manager (shim process start, socket, pod
// grouping by io.kubernetes.cri.sandbox-id, cleanup of a dead shim's task)
// with mxc's defaults for Info and Stop.
type mxcManager struct {
	shim.Shim
}

// NewManager returns the shim manager for io.containerd.mxc.v2.
func NewManager() shim.Shim {
	return mxcManager{Shim: manager.NewShimManager(RuntimeName)}
}

// Start spawns the shim's long-running process with the collector off for
// its start-up (helperheap.OffForChildren; it restores the setting). This
// process, which exits as soon as that one runs, needs no collector either
// (containerd's shim code has just set GOGC=40). It also spawns a spare
// for the next task's start if there is none (spare_linux.go); a start a
// spare takes (package faststart) never gets here.
func (m mxcManager) Start(ctx context.Context, opts *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	helperheap.Delay(heapSettle)
	helperheap.OffForChildren()
	res, err := m.Shim.Start(ctx, opts)
	if err == nil {
		// The next task's start is handed to a spare (spare_linux.go).
		spawnSpare(opts.GetContainerdGrpcAddress())
	}
	return res, err
}

// Stop runs when containerd cleans up after a shim that is gone (`shim
// delete`, with the task's bundle as the working directory): the runc code
// force-deletes the container with the binary and root recorded in the
// bundle; mxc's node config is put back first.
//
// containerd runs this clean-up after every shim's exit, also after a
// normal task deletion, and waits for it: `ctr run --rm` and every CRI
// container removal pay for it. When the shim's own delete of the task
// succeeded (the DeletedMarker) and recorded the exit, the runtime's
// delete would find nothing (~5 ms of an mxc-runtime start for a no-op):
// the recorded exit is the answer, as the runc code would give it. The
// shim binary normally gives that answer before its Go runtime starts
// (package fastcleanup); this is the same answer for the cases the C
// code leaves to Go (an older shim's empty marker, a mount left below
// the rootfs, MXC_SHIM_FAST_CLEANUP=0).
func (m mxcManager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	if cwd, err := os.Getwd(); err == nil {
		bundle := filepath.Join(filepath.Dir(cwd), id) // as the runc code finds it
		if st, ok := deletedStatus(ctx, bundle); ok {
			return st, nil
		}
		if bo, err := readBundleOptions(cwd); err != nil {
			log.G(ctx).WithError(err).Warn("mxc: read bundle options")
		} else if bo.MxcConfig != "" {
			_ = os.Setenv(nodeConfigEnv, bo.MxcConfig)
		}
	}
	return m.Shim.Stop(ctx, id)
}

// deletedStatus is the exit recorded in bundle, if the shim deleted the
// task's container there (DeletedMarker); ok is false when the runtime's
// delete must run. The marker holds the shim's DeleteResponse; a marker
// of an older shim is empty and the exit comes from the runc code's exit
// file.
func deletedStatus(ctx context.Context, bundle string) (st shim.StopStatus, ok bool) {
	b, err := os.ReadFile(filepath.Join(bundle, DeletedMarker))
	if err != nil {
		return st, false
	}
	var resp taskAPI.DeleteResponse
	if len(b) > 0 && proto.Unmarshal(b, &resp) == nil && resp.GetExitedAt() != nil {
		st = shim.StopStatus{Pid: int(resp.GetPid()), ExitStatus: int(resp.GetExitStatus()), ExitedAt: resp.GetExitedAt().AsTime()}
	} else {
		exit, err := runc.ReadExitStatus(bundle)
		if err != nil {
			return st, false
		}
		st = shim.StopStatus{ExitedAt: exit.Timestamp, ExitStatus: exit.Status, Pid: exit.Pid}
	}
	// The shim's delete unmounted it; this is the runc code's step, in case.
	if err := mount.UnmountRecursive(filepath.Join(bundle, "rootfs"), 0); err != nil {
		log.G(ctx).WithError(err).Warn("failed to cleanup rootfs mount")
	}
	return st, true
}

// Info answers containerd's runtime introspection (`shim -info`, used by the
// CRI plugin to learn the runtime's features) with the options resolved as
// Create would resolve them and the runtime's own `features` output.
func (m mxcManager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	info := &types.RuntimeInfo{
		Name:    RuntimeName,
		Version: &types.RuntimeVersion{Version: version.Version, Revision: version.Revision},
	}
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	var anyOpts *ptypes.Any
	if len(data) > 0 {
		anyOpts = &ptypes.Any{}
		if err := proto.Unmarshal(data, anyOpts); err != nil {
			return nil, fmt.Errorf("%w: decode: %v", ErrInvalidOptions, err)
		}
	}
	o, err := ParseOptions(anyOpts)
	if err != nil {
		return nil, err
	}
	self, _ := os.Executable()
	if err := o.Resolve(self); err != nil {
		// containerd also asks without the handler's options (e.g. its check for the
		// deprecated runtime-allow-mounts annotation), where the default runtime may
		// not resolve: answer with what is known instead of failing the caller.
		log.G(ctx).WithError(err).Debug("mxc: runtime not resolved for info")
		return info, nil
	}
	if info.Options, err = typeurl.MarshalAnyToProto(o.Runc); err != nil {
		return nil, fmt.Errorf("encode options: %w", err)
	}
	feat, err := runtimeFeatures(ctx, o.Runc.BinaryName)
	if err != nil {
		// older runtimes lack `features`; containerd then assumes the minimum
		log.G(ctx).WithError(err).Debug("mxc: runtime features unavailable")
		return info, nil
	}
	if info.Features, err = typeurl.MarshalAnyToProto(feat); err != nil {
		return nil, fmt.Errorf("encode features: %w", err)
	}
	return info, nil
}

func runtimeFeatures(ctx context.Context, bin string) (*features.Features, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "features")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s features: %w (stderr: %q)", bin, err, stderr.String())
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("%s features: %w", bin, err)
	}
	if f.OCIVersionMax == "" {
		return nil, errors.New(bin + " features: no ociVersionMax")
	}
	return &f, nil
}
