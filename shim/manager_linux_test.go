//go:build linux

package shim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	gorunc "github.com/containerd/go-runc"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func infoInput(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// Info resolves the options as Create does and reports the runtime's features.
func TestInfo(t *testing.T) {
	dir := t.TempDir()
	rt := filepath.Join(dir, "fake-runtime")
	script := "#!/bin/sh\n[ \"$1\" = features ] && echo '{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.3.0\",\"annotations\":{\"io.mxc.tiers\":\"process\"}}'\n"
	if err := os.WriteFile(rt, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewManager()
	for _, in := range []any{
		&options.Options{BinaryName: rt},
		&runtimeoptions.Options{ConfigBody: []byte("BinaryName = '" + rt + "'\nRoot = '/run/x'\n")},
	} {
		info, err := m.Info(ctx, infoInput(t, in))
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != RuntimeName {
			t.Fatalf("name %q", info.Name)
		}
		o, err := typeurl.UnmarshalAny(info.Options)
		if err != nil {
			t.Fatal(err)
		}
		if ro := o.(*options.Options); ro.BinaryName != rt || ro.Root == "" {
			t.Fatalf("options %+v", ro)
		}
		f, err := typeurl.UnmarshalAny(info.Features)
		if err != nil {
			t.Fatal(err)
		}
		if ff := f.(*features.Features); ff.OCIVersionMax != "1.3.0" || ff.Annotations["io.mxc.tiers"] != "process" {
			t.Fatalf("features %+v", ff)
		}
	}
	// no options and no runtime to be found: an answer without features, not an error
	t.Setenv("PATH", dir)
	info, err := m.Info(ctx, bytes.NewReader(nil))
	if err != nil || info.Name != RuntimeName || info.Features != nil {
		t.Fatalf("info without runtime: %v %+v", err, info)
	}
	// options that are wrong are an error
	if _, err := m.Info(ctx, infoInput(t, &runtimeoptions.Options{ConfigBody: []byte("Bogus = 1")})); err == nil {
		t.Fatal("bad options accepted")
	}
}

func TestBundleOptions(t *testing.T) {
	dir := t.TempDir()
	if bo, err := readBundleOptions(dir); err != nil || bo.MxcConfig != "" {
		t.Fatalf("missing file: %v %+v", err, bo)
	}
	if err := writeBundleOptions(dir, &Options{Runc: &options.Options{}, NodeConfig: "/etc/mxc/x.yaml"}); err != nil {
		t.Fatal(err)
	}
	if bo, err := readBundleOptions(dir); err != nil || bo.MxcConfig != "/etc/mxc/x.yaml" {
		t.Fatalf("round trip: %v %+v", err, bo)
	}
}

// One shim process serves a pod: its tasks must agree on the node config.
func TestUseNodeConfig(t *testing.T) {
	t.Setenv(nodeConfigEnv, "")
	s := &service{followed: map[string]bool{}}
	if err := s.useNodeConfig("/etc/mxc/a.yaml"); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(nodeConfigEnv) != "/etc/mxc/a.yaml" {
		t.Fatalf("env %q", os.Getenv(nodeConfigEnv))
	}
	if err := s.useNodeConfig("/etc/mxc/a.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := s.useNodeConfig("/etc/mxc/b.yaml"); err == nil {
		t.Fatal("second node config accepted")
	}
	if err := s.useNodeConfig(""); err == nil {
		t.Fatal("default node config accepted after a pinned one")
	}
}

// The clean-up after a shim's exit (`shim delete`) calls the runtime's
// delete unless the shim deleted the task's container itself and recorded
// its exit; then it answers with that exit and runs no runtime.
func TestStopAfterShimDelete(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	rt := filepath.Join(dir, "fake-runtime")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\n"
	if err := os.WriteFile(rt, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "mxc-test")
	exitedAt := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		marker      string // "", "empty" (an older shim's), "response"
		exit        bool
		wantRuntime bool
		wantStatus  int
	}{
		{name: "deleted by the shim", marker: "response", wantRuntime: false, wantStatus: 3},
		{name: "deleted by an older shim", marker: "empty", exit: true, wantRuntime: false, wantStatus: 3},
		{name: "no marker", exit: true, wantRuntime: true, wantStatus: 3},
		{name: "empty marker without a recorded exit", marker: "empty", wantRuntime: true, wantStatus: 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(calls)
			bundle := filepath.Join(t.TempDir(), "task1")
			if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := runc.WriteRuntime(bundle, rt); err != nil {
				t.Fatal(err)
			}
			if err := runc.WriteOptions(bundle, &options.Options{Root: filepath.Join(dir, "root")}); err != nil {
				t.Fatal(err)
			}
			switch tc.marker {
			case "empty":
				if err := os.WriteFile(filepath.Join(bundle, DeletedMarker), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			case "response":
				resp := &taskAPI.DeleteResponse{Pid: 42, ExitStatus: 3, ExitedAt: timestamppb.New(exitedAt)}
				if err := markDeleted(bundle, resp); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(bundle, "."+DeletedMarker+".tmp")); !os.IsNotExist(err) {
					t.Fatalf("temporary marker left: %v", err)
				}
			}
			if tc.exit {
				if err := runc.WriteExitStatus(bundle, gorunc.Exit{Timestamp: exitedAt, Pid: 42, Status: 3}); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(bundle)
			st, err := NewManager().Stop(ctx, "task1")
			if err != nil {
				t.Fatal(err)
			}
			if st.ExitStatus != tc.wantStatus {
				t.Fatalf("exit status %d, want %d", st.ExitStatus, tc.wantStatus)
			}
			if (tc.exit || tc.marker == "response") && (st.Pid != 42 || !st.ExitedAt.Equal(exitedAt)) {
				t.Fatalf("status %+v", st)
			}
			got, _ := os.ReadFile(calls)
			if ran := len(got) > 0; ran != tc.wantRuntime {
				t.Fatalf("runtime called: %v (%q), want %v", ran, got, tc.wantRuntime)
			}
			if tc.wantRuntime && !bytes.Contains(got, []byte("delete --force task1")) {
				t.Fatalf("runtime call %q", got)
			}
		})
	}
}
