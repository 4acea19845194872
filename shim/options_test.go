package shim

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

func mustAny(t *testing.T, v any) typeurl.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseOptions(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "mxc.toml")
	if err := os.WriteFile(cfgFile, []byte("BinaryName = \"/opt/mxc/mxc-runtime\"\nMxcConfig = \"/etc/mxc/strict.yaml\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         typeurl.Any
		binary     string
		root       string
		nodeConfig string
		systemd    bool
		errLike    string
	}{
		{name: "nil", in: nil},
		{name: "empty any", in: &anypb.Any{}},
		{name: "runc options", in: mustAny(t, &options.Options{BinaryName: "/usr/bin/crun", Root: "/run/x", SystemdCgroup: true}),
			binary: "/usr/bin/crun", root: "/run/x", systemd: true},
		{name: "CRI body", in: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryName = '/b'\nRoot = '/r'\nMxcConfig = '/etc/mxc/n.yaml'\nTypeUrl = 'x'\n")}),
			binary: "/b", root: "/r", nodeConfig: "/etc/mxc/n.yaml"},
		{name: "config path", in: mustAny(t, &runtimeoptions.Options{ConfigPath: cfgFile}),
			binary: "/opt/mxc/mxc-runtime", nodeConfig: "/etc/mxc/strict.yaml"},
		{name: "body wins over path", in: mustAny(t, &runtimeoptions.Options{ConfigPath: "/nonexistent", ConfigBody: []byte("Root = '/r'")}),
			root: "/r"},
		{name: "empty CRI body", in: mustAny(t, &runtimeoptions.Options{})},
		{name: "unknown key", in: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryNam = '/b'")}),
			errLike: "unknown key(s) BinaryNam"},
		{name: "bad toml", in: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("BinaryName = ")}),
			errLike: "runtime options table"},
		{name: "wrong value type", in: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("SystemdCgroup = 'yes'")}),
			errLike: "runtime options table"},
		{name: "missing config path", in: mustAny(t, &runtimeoptions.Options{ConfigPath: filepath.Join(dir, "nope.toml")}),
			errLike: "ConfigPath"},
		{name: "foreign type", in: mustAny(t, &emptypb.Empty{}), errLike: "unsupported options type"},
		{name: "garbage type url", in: &anypb.Any{TypeUrl: "example.com/Nope", Value: []byte{1}}, errLike: "decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOptions(tc.in)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errLike)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v does not wrap ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Runc.BinaryName != tc.binary || o.Runc.Root != tc.root || o.NodeConfig != tc.nodeConfig || o.Runc.SystemdCgroup != tc.systemd {
				t.Fatalf("got binary=%q root=%q node=%q systemd=%v", o.Runc.BinaryName, o.Runc.Root, o.NodeConfig, o.Runc.SystemdCgroup)
			}
		})
	}
}

func writeExec(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("exec bits")
	}
	shimDir, pathDir := t.TempDir(), t.TempDir()
	self := filepath.Join(shimDir, "containerd-shim-mxc-v2")
	writeExec(t, self)
	writeExec(t, filepath.Join(pathDir, RuntimeBinary))
	nodeCfg := filepath.Join(pathDir, "node.yaml")
	if err := os.WriteFile(nodeCfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", pathDir)

	o := &Options{Runc: &options.Options{}}
	if err := o.Resolve(self); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(pathDir, RuntimeBinary); o.Runc.BinaryName != want || o.Runc.Root != DefaultRoot {
		t.Fatalf("PATH fallback: got %q %q", o.Runc.BinaryName, o.Runc.Root)
	}

	writeExec(t, filepath.Join(shimDir, RuntimeBinary)) // next to the shim wins over PATH
	o = &Options{Runc: &options.Options{}}
	if err := o.Resolve(self); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(shimDir, RuntimeBinary); o.Runc.BinaryName != want {
		t.Fatalf("next to shim: got %q want %q", o.Runc.BinaryName, want)
	}

	bad := []struct {
		name    string
		o       *Options
		self    string
		errLike string
	}{
		{"no runtime anywhere", &Options{Runc: &options.Options{}}, filepath.Join(t.TempDir(), "shim"), "not found next to the shim"},
		{"binary missing", &Options{Runc: &options.Options{BinaryName: filepath.Join(pathDir, "nope")}}, self, "BinaryName"},
		{"relative root", &Options{Runc: &options.Options{Root: "run/mxc"}}, self, "Root"},
		{"relative node config", &Options{Runc: &options.Options{}, NodeConfig: "node.yaml"}, self, "MxcConfig"},
		{"missing node config", &Options{Runc: &options.Options{}, NodeConfig: filepath.Join(pathDir, "nope.yaml")}, self, "MxcConfig"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "no runtime anywhere" {
				t.Setenv("PATH", t.TempDir())
			}
			err := tc.o.Resolve(tc.self)
			if err == nil || !strings.Contains(err.Error(), tc.errLike) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument containing %q", err, tc.errLike)
			}
		})
	}
	o = &Options{Runc: &options.Options{BinaryName: RuntimeBinary}, NodeConfig: nodeCfg}
	if err := o.Resolve(self); err != nil || !filepath.IsAbs(o.Runc.BinaryName) {
		t.Fatalf("named binary on PATH: %v %q", err, o.Runc.BinaryName)
	}
}

func TestAuditLogPath(t *testing.T) {
	if got, want := AuditLog("/run/mxc", "k8s.io", "abc"), filepath.Join("/run/mxc", "k8s.io", "abc", "audit.jsonl"); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

// FuzzParseTOML: no input may panic the options parser, and whatever it
// accepts must be a complete Options.
func FuzzParseTOML(f *testing.F) {
	f.Add([]byte("BinaryName = '/usr/local/bin/mxc-runtime'\nRoot = '/run/mxc'\n"))
	f.Add([]byte("MxcConfig = \"/etc/mxc/policies/strict-node.yaml\"\nSystemdCgroup = true\nIoUid = 1000\n"))
	f.Add([]byte("[nested]\nx = 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseTOML(body, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			return
		}
		if o == nil || o.Runc == nil {
			t.Fatal("nil options without error")
		}
	})
}
