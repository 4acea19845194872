//go:build linux

package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/jsonwarm"
)

// nodeConfigEnv is how mxc-runtime's global --config flag reads its default.
const nodeConfigEnv = "MXC_CONFIG"

// bundleOptionsFile keeps the mxc-only options in the bundle, next to the
// options.json the runc shim code writes, for the `delete` shim invocation.
const bundleOptionsFile = "mxc-options.json"

// DeletedMarker, in a task's bundle, says that the runtime's delete of the
// task's container succeeded through this shim: the container and every
// piece of host state keyed by its id are gone (see mxcManager.Stop). It
// holds the DeleteResponse the shim answered with, protobuf-encoded: the
// answer of the clean-up containerd runs after the shim's exit, which
// package fastcleanup gives from C without starting the Go shim.
const DeletedMarker = "mxc-deleted"

// drainTimeout bounds how long a task's deletion waits for its audit log.
const drainTimeout = 3 * time.Second

// service is containerd's runc task service with mxc's defaults put into
// every task's options and mxc's audit log forwarded as events. Everything
// else -- I/O, exec, pause, OOM and exit events, the pod sandbox grouping --
// is the runc shim's code, unchanged: mxc-runtime speaks runc's CLI.
type service struct {
	taskAPI.TTRPCTaskService

	self    string // the shim's executable, to find mxc-runtime next to it
	audit   *auditForwarder
	helpers *helperWatchers

	mu         sync.Mutex
	nodeConfig *string           // MXC_CONFIG this shim process set; nil: not yet decided
	followed   map[string]bool   // tasks whose audit log is followed
	bundles    map[string]string // task id -> bundle, for the DeletedMarker
}

func newTaskService(ctx context.Context, publisher shim.Publisher, sd shutdown.Service) (taskAPI.TTRPCTaskService, error) {
	// containerd's shim code has just set GOGC=40 (pkg/shim setRuntime),
	// whose 1.6 MiB first heap goal means collections all through the
	// task's creation, ~10% of the shim's CPU then (perf): keep the
	// collector off until the shim has settled, then give that back.
	helperheap.Delay(heapSettle)
	// The runc code decodes the task's config.json when its init exits
	// (ShouldKillAllOnExit), on the path of the exit event; encoding/json's
	// first-use tables for the spec, ~1 ms of CPU, are built meanwhile.
	jsonwarm.Start(&specs.Spec{})
	go warmProto()
	inner, err := task.NewTaskService(ctx, publisher, sd)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("shim executable: %w", err)
	}
	pub := publisherFunc(func(ctx context.Context, topic string, ev any) error {
		return publisher.Publish(ctx, topic, ev)
	})
	s := &service{
		TTRPCTaskService: inner,
		self:             self,
		audit:            newAuditForwarder(ctx, pub),
		helpers:          newHelperWatchers(ctx),
		followed:         map[string]bool{},
		bundles:          map[string]string{},
	}
	sd.RegisterCallback(func(context.Context) error {
		s.helpers.stopAll()
		s.audit.stopAll(drainTimeout)
		return nil
	})
	return s, nil
}

// RegisterTTRPC serves this wrapper, not the inner service.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Create resolves the options (runtime binary, root, node config), hands the
// task to the runc shim code, and starts following its audit log and its
// policy monitor.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	o, err := ParseOptions(r.Options)
	if err == nil {
		err = o.Resolve(s.self)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("create %s: %w", r.ID, err))
	}
	if err := s.useNodeConfig(o.NodeConfig); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("create %s: %w", r.ID, err))
	}
	if err := writeBundleOptions(r.Bundle, o); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("create %s: %w", r.ID, err))
	}
	if r.Options, err = typeurl.MarshalAnyToProto(o.Runc); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("create %s: encode options: %w", r.ID, err))
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		return resp, err
	}
	s.mu.Lock()
	s.bundles[r.ID] = r.Bundle
	s.mu.Unlock()
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		log.G(ctx).WithError(err).Warn("mxc: no namespace; audit events of this task are not forwarded")
		return resp, nil
	}
	path := AuditLog(o.Runc.Root, ns, r.ID)
	s.mu.Lock()
	s.followed[r.ID] = true
	s.mu.Unlock()
	s.audit.start(r.ID, path)
	s.helpers.start(r.ID, filepath.Dir(path), ensureCommand(o.Runc.BinaryName, o.Runc.Root, ns, r.ID))
	return resp, nil
}

// Delete deletes the task, then drains its audit log and stops following
// it. The follower holds the log open, so it reads to the end of the file
// after the runtime has removed the state dir, and every event is in by
// then: the runtime's delete ends the container's policy monitor, the last
// writer (an OOM event can come up to 200 ms after the init's exit).
// A refused delete (task still running) keeps the follower.
//
// A delete that succeeded leaves the DeletedMarker in the bundle: the runc
// shim code returns success only when the runtime's delete did (or found
// no container), so the clean-up containerd runs once this shim has exited
// (the `delete` command, mxcManager.Stop) has nothing left to remove.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	s.mu.Lock()
	followed := s.followed[r.ID]
	delete(s.followed, r.ID)
	bundle := s.bundles[r.ID]
	delete(s.bundles, r.ID)
	s.mu.Unlock()
	if bundle != "" {
		if err := markDeleted(bundle, resp); err != nil {
			// The clean-up then runs the runtime's delete, as without a marker.
			log.G(ctx).WithError(err).Warn("mxc: mark task deleted")
		}
	}
	if followed {
		s.helpers.stop(r.ID)
		s.audit.stop(r.ID, drainTimeout)
	}
	return resp, nil
}

// markDeleted writes the DeletedMarker with resp, the clean-up's answer.
// Written whole under a temporary name and renamed, so that a reader sees
// either no marker or the full response.
func markDeleted(bundle string, resp *taskAPI.DeleteResponse) error {
	b, err := proto.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode delete response: %w", err)
	}
	tmp := filepath.Join(bundle, "."+DeletedMarker+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(bundle, DeletedMarker)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// useNodeConfig points every runtime call of this shim process at the node
// config the options name. One shim serves a whole pod, whose containers
// share one runtime handler and so one node config; a task asking for a
// different one is refused rather than run under the wrong policy ceiling.
func (s *service) useNodeConfig(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodeConfig != nil {
		if *s.nodeConfig != path {
			return fmt.Errorf("MxcConfig %q differs from %q used by this shim's other tasks: %w",
				path, *s.nodeConfig, errdefs.ErrFailedPrecondition)
		}
		return nil
	}
	if path != "" {
		if err := os.Setenv(nodeConfigEnv, path); err != nil {
			return fmt.Errorf("set %s: %w", nodeConfigEnv, err)
		}
	}
	s.nodeConfig = &path
	return nil
}

type bundleOptions struct {
	MxcConfig string `json:"mxcConfig,omitempty"`
}

func writeBundleOptions(bundle string, o *Options) error {
	b, err := json.Marshal(bundleOptions{MxcConfig: o.NodeConfig})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, bundleOptionsFile), b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", bundleOptionsFile, err)
	}
	return nil
}

func readBundleOptions(bundle string) (bundleOptions, error) {
	var bo bundleOptions
	b, err := os.ReadFile(filepath.Join(bundle, bundleOptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return bo, nil
	} else if err != nil {
		return bo, err
	}
	return bo, json.Unmarshal(b, &bo)
}
