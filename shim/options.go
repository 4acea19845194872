package shim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/pelletier/go-toml/v2"

	"mxc.dev/mxc/audit"
)

// RuntimeBinary is the runtime the shim drives when the options name none.
const RuntimeBinary = "mxc-runtime"

// DefaultRoot is mxc-runtime's own default state root; the runc shim code
// appends the containerd namespace, so containers live in /run/mxc/<ns>/<id>.
const DefaultRoot = "/run/mxc"

// ErrInvalidOptions marks runtime options the shim cannot use; it wraps
// errdefs.ErrInvalidArgument so containerd reports InvalidArgument.
var ErrInvalidOptions = fmt.Errorf("mxc shim options: %w", errdefs.ErrInvalidArgument)

// Options is what the shim runs a container with: runc's options (BinaryName,
// Root, SystemdCgroup, ...) plus mxc's own keys.
type Options struct {
	Runc *options.Options
	// NodeConfig is the node config file handed to mxc-runtime (MXC_CONFIG),
	// e.g. a RuntimeClass that pins a stricter node policy. Empty: the
	// runtime's default (/etc/mxc/config.yaml).
	NodeConfig string
}

// fileOptions mirrors the keys accepted in a TOML options table (containerd
// CRI's `[...runtimes.NAME.options]`, or a file named by `ctr run
// --runtime-config-path`). The keys are runc's option names, so a config that
// works for the runc shim works here; MxcConfig is the one addition.
type fileOptions struct {
	TypeUrl       string `toml:"TypeUrl"` //nolint:revive // containerd's spelling; ignored
	BinaryName    string `toml:"BinaryName"`
	Root          string `toml:"Root"`
	SystemdCgroup bool   `toml:"SystemdCgroup"`
	NoPivotRoot   bool   `toml:"NoPivotRoot"`
	NoNewKeyring  bool   `toml:"NoNewKeyring"`
	ShimCgroup    string `toml:"ShimCgroup"`
	IoUid         uint32 `toml:"IoUid"` //nolint:revive
	IoGid         uint32 `toml:"IoGid"`
	CriuImagePath string `toml:"CriuImagePath"`
	CriuWorkPath  string `toml:"CriuWorkPath"`
	MxcConfig     string `toml:"MxcConfig"`
}

// ParseOptions turns the options containerd hands a task (a protobuf Any,
// possibly nil) into the shim's Options, without defaults. Accepted:
//   - runc's options type (containerd.runc.v1.Options), as the Go client and
//     docker send them;
//   - the generic runtimeoptions.v1.Options that containerd's CRI sends for a
//     non-runc runtime_type: ConfigBody holds the TOML of the handler's
//     options table, or ConfigPath names a TOML file with the same keys.
func ParseOptions(v typeurl.Any) (*Options, error) {
	out := &Options{Runc: &options.Options{}}
	if v == nil || len(v.GetValue()) == 0 && v.GetTypeUrl() == "" {
		return out, nil
	}
	decoded, err := typeurl.UnmarshalAny(v)
	if err != nil {
		return nil, fmt.Errorf("%w: decode %q: %v", ErrInvalidOptions, v.GetTypeUrl(), err)
	}
	switch o := decoded.(type) {
	case *options.Options:
		out.Runc = o
		return out, nil
	case *runtimeoptions.Options:
		body := o.ConfigBody
		src := "runtime options table"
		if len(body) == 0 && o.ConfigPath != "" {
			body, err = os.ReadFile(o.ConfigPath)
			if err != nil {
				return nil, fmt.Errorf("%w: ConfigPath: %v", ErrInvalidOptions, err)
			}
			src = o.ConfigPath
		}
		return parseTOML(body, src)
	default:
		return nil, fmt.Errorf("%w: unsupported options type %q (want %q or %q)", ErrInvalidOptions,
			v.GetTypeUrl(), "containerd.runc.v1.Options", "runtimeoptions.v1.Options")
	}
}

func parseTOML(body []byte, src string) (*Options, error) {
	var fo fileOptions
	dec := toml.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fo); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			var keys []string
			for _, e := range sm.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return nil, fmt.Errorf("%w: %s: unknown key(s) %s (known: BinaryName, Root, SystemdCgroup, NoPivotRoot, NoNewKeyring, ShimCgroup, IoUid, IoGid, CriuImagePath, CriuWorkPath, MxcConfig)",
				ErrInvalidOptions, src, strings.Join(keys, ", "))
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOptions, src, err)
	}
	return &Options{
		Runc: &options.Options{
			BinaryName:    fo.BinaryName,
			Root:          fo.Root,
			SystemdCgroup: fo.SystemdCgroup,
			NoPivotRoot:   fo.NoPivotRoot,
			NoNewKeyring:  fo.NoNewKeyring,
			ShimCgroup:    fo.ShimCgroup,
			IoUid:         fo.IoUid,
			IoGid:         fo.IoGid,
			CriuImagePath: fo.CriuImagePath,
			CriuWorkPath:  fo.CriuWorkPath,
		},
		NodeConfig: fo.MxcConfig,
	}, nil
}

// Resolve fills in the defaults and checks what was given: the runtime
// binary (default: mxc-runtime next to the shim's own executable, else on
// PATH) must be an executable file, Root and MxcConfig absolute paths.
// self is the shim's executable path ("" to skip the next-to-shim lookup).
func (o *Options) Resolve(self string) error {
	r := o.Runc
	if r.BinaryName == "" {
		bin, err := findRuntime(self)
		if err != nil {
			return err
		}
		r.BinaryName = bin
	} else {
		bin, err := exec.LookPath(r.BinaryName)
		if err != nil {
			return fmt.Errorf("%w: BinaryName %q: %v", ErrInvalidOptions, r.BinaryName, err)
		}
		r.BinaryName = bin
	}
	if r.Root == "" {
		r.Root = DefaultRoot
	} else if !filepath.IsAbs(r.Root) {
		return fmt.Errorf("%w: Root %q: must be an absolute path", ErrInvalidOptions, r.Root)
	}
	if o.NodeConfig != "" {
		if !filepath.IsAbs(o.NodeConfig) {
			return fmt.Errorf("%w: MxcConfig %q: must be an absolute path", ErrInvalidOptions, o.NodeConfig)
		}
		if _, err := os.Stat(o.NodeConfig); err != nil {
			return fmt.Errorf("%w: MxcConfig: %v", ErrInvalidOptions, err)
		}
	}
	return nil
}

// findRuntime looks for mxc-runtime next to the shim (how the node installer
// lays them out, whatever PATH containerd has), then on PATH.
func findRuntime(self string) (string, error) {
	if self != "" {
		p := filepath.Join(filepath.Dir(self), RuntimeBinary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(RuntimeBinary)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found next to the shim (%s) nor on PATH; set BinaryName in the runtime options",
			ErrInvalidOptions, RuntimeBinary, filepath.Dir(self))
	}
	return p, nil
}

// AuditLog is where the runtime appends a container's audit events: the
// runc shim code runs the runtime with --root ROOT/NAMESPACE, and mxc keeps a
// container's state in ROOT/NAMESPACE/ID.
func AuditLog(root, namespace, id string) string {
	return filepath.Join(root, namespace, id, audit.FileName)
}
