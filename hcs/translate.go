package hcs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

// DefaultOwner is the HCS owner recorded on containers mxc creates.
const DefaultOwner = "mxc"

// Isolation is how HCS holds the container.
type Isolation string

const (
	// IsolationProcess is a process-isolated (Argon) container: a silo on the host kernel.
	IsolationProcess Isolation = "process"
	// IsolationHyperV is a Hyper-V isolated (Xenon v1) container: its own utility VM.
	IsolationHyperV Isolation = "hyperv"
)

// Options are host facts the translation needs; Translate itself reads nothing.
type Options struct {
	// ID is the container id, used as the HCS system name. Required.
	ID string
	// Owner is recorded by HCS; DefaultOwner when empty.
	Owner string
	// UtilityVMPath is the node config's windows.utilityVMPath: the Hyper-V
	// utility VM image used when the spec names none.
	UtilityVMPath string
	// HostCPUs is the number of logical processors of the host; needed to
	// turn a CPU count into HCS's share-of-the-host cap.
	HostCPUs int
	// AllowDegraded is the node config's allowDegraded: a rule HCS schema v1
	// has no mechanism for is recorded as degraded instead of refused. Rules
	// whose loss would open a path (files, network) are refused regardless.
	AllowDegraded bool
}

// Enforcement says how one policy rule holds on Windows.
type Enforcement struct {
	Rule      string `json:"rule"`
	Mechanism string `json:"mechanism"`
}

// Result is everything the driver needs to create the container.
type Result struct {
	// Isolation chosen: process, or hyperv for tier microvm or spec.windows.hyperv.
	Isolation Isolation `json:"isolation"`
	// Config is the HCS v1 container document. Layer IDs are empty (the
	// driver derives them from the folder names), and so is VolumePath when
	// MountScratch is set.
	Config *ContainerConfig `json:"config"`
	// Init is the process document of the container's init process.
	Init *ProcessConfig `json:"init"`
	// MountScratch asks the driver to activate and prepare the scratch layer
	// (the last of spec.windows.layerFolders) and use its volume as
	// VolumePath: the spec gave no root.path volume.
	MountScratch bool `json:"mountScratch,omitempty"`
	// NetworkNamespace is spec.windows.network.networkNamespace: HCS v1 has
	// no namespaces, so the driver attaches that namespace's endpoints.
	NetworkNamespace string `json:"networkNamespace,omitempty"`
	// ACLs are applied, in this order, to every HNS endpoint of the
	// container before it starts. Empty when no network rule applies.
	ACLs []ACL `json:"acls,omitempty"`
	// TimeoutMS is policy process.timeout: the shim terminates the container
	// that long after start.
	TimeoutMS uint64 `json:"timeoutMS,omitempty"`
	// Enforced lists each policy rule and the HCS mechanism that holds it.
	Enforced []Enforcement `json:"enforced,omitempty"`
	// Degraded lists rules that do not hold on this host, accepted because
	// the node allows degraded containers.
	Degraded []string `json:"degraded,omitempty"`
	// Notes are facts worth recording: what was tightened, what has no
	// meaning on Windows.
	Notes []string `json:"notes,omitempty"`
}

func (r *Result) enforce(rule, mechanism string) {
	r.Enforced = append(r.Enforced, Enforcement{Rule: rule, Mechanism: mechanism})
}

func (r *Result) note(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// degrade records rule as not holding when the node allows it; otherwise it
// returns the refusal.
func (r *Result) degrade(opts Options, rule, why string) error {
	if !opts.AllowDegraded {
		return fmt.Errorf("%s: %s (refused: the node does not allow degraded containers)", rule, why)
	}
	r.Degraded = append(r.Degraded, rule+": "+why)
	return nil
}

// volumeGUIDPath is a volume GUID path as HCS v1 takes it for VolumePath.
var volumeGUIDPath = regexp.MustCompile(`^\\\\\?\\Volume\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}\\?$`)

// Translate maps an OCI spec and the container's effective policy onto an
// HCS schema v1 container document, its init process and the HNS endpoint
// ACLs that carry the egress rules. eff is nil when no agent policy applies:
// the result is then a plain translation of the spec, as runhcs would make.
//
// Translate fails closed: a rule HCS v1 cannot enforce is an error naming
// the rule (or, for rules whose loss opens no path and only when
// opts.AllowDegraded, a Degraded entry), never a silent drop. The spec is
// not modified.
func Translate(s *specs.Spec, eff *spec.Effective, opts Options) (*Result, error) {
	if s == nil {
		return nil, errors.New("no OCI spec")
	}
	if opts.ID == "" {
		return nil, errors.New("no container id")
	}
	if s.Windows == nil {
		return nil, errors.New("windows: section missing: not a Windows container bundle")
	}
	if s.Linux != nil {
		return nil, errors.New("linux: Linux containers on Windows (LCOW) need HCS schema v2, which hcsshim does not export")
	}
	var pol *spec.AgentPolicy
	if eff != nil {
		pol = &eff.Policy
	}
	owner := opts.Owner
	if owner == "" {
		owner = DefaultOwner
	}
	r := &Result{Config: &ContainerConfig{
		SystemType:              "Container",
		Name:                    opts.ID,
		Owner:                   owner,
		HostName:                s.Hostname,
		IgnoreFlushesDuringBoot: s.Windows.IgnoreFlushesDuringBoot,
		Servicing:               s.Windows.Servicing,
	}}

	ann, err := parseAnnotations(s.Annotations)
	if err != nil {
		return nil, err
	}
	if err := r.isolation(s, pol, ann, opts); err != nil {
		return nil, err
	}
	if err := r.storage(s); err != nil {
		return nil, err
	}
	if err := r.mounts(s, pol, ann); err != nil {
		return nil, err
	}
	if err := r.resources(s, pol, ann, opts); err != nil {
		return nil, err
	}
	if err := r.network(s, pol); err != nil {
		return nil, err
	}
	if err := r.identityAndDevices(s, pol, ann); err != nil {
		return nil, err
	}
	if pol != nil {
		if err := r.policyRest(pol, opts); err != nil {
			return nil, err
		}
	}
	init, err := ProcessFor(s.Process)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	r.Init = init
	for _, n := range ann.notes {
		r.note("%s", n)
	}
	return r, nil
}

// isolation picks process or Hyper-V isolation. Hyper-V is used when the
// policy's tier is microvm or the spec asks for it (spec.windows.hyperv, as
// runhcs decides); the spec may make isolation stronger than the policy asks,
// never weaker.
func (r *Result) isolation(s *specs.Spec, pol *spec.AgentPolicy, ann *annotations, opts Options) error {
	tier := spec.Tier("")
	if pol != nil {
		tier = pol.Isolation
		switch tier {
		case spec.TierProcess, spec.TierSession, spec.TierMicroVM:
		default:
			return fmt.Errorf("isolation: unknown tier %q", tier)
		}
	}
	if ann.hostProcess {
		if pol != nil {
			return fmt.Errorf("annotation %s=true conflicts with policy isolation %q: a host process container runs on the host without any isolation", annHostProcess, tier)
		}
		return fmt.Errorf("annotation %s=true: host process containers run on the host without isolation; mxc does not create them", annHostProcess)
	}
	hyperv := s.Windows.HyperV != nil || tier == spec.TierMicroVM
	if !hyperv {
		r.Isolation = IsolationProcess
		switch tier {
		case spec.TierProcess:
			r.enforce("isolation: process", "process-isolated HCS container (Windows server silo: own object namespace, registry, accounts and network compartment)")
		case spec.TierSession:
			r.enforce("isolation: session", "process-isolated HCS container: its own Windows session and container-local accounts (ContainerUser/ContainerAdministrator), no access to the host's interactive session")
		}
		return nil
	}
	r.Isolation = IsolationHyperV
	uvm := ""
	if s.Windows.HyperV != nil {
		uvm = s.Windows.HyperV.UtilityVMPath
	}
	if uvm == "" {
		uvm = opts.UtilityVMPath
	}
	if uvm == "" {
		what := "windows.hyperv"
		if tier == spec.TierMicroVM {
			what = "isolation: microvm"
		}
		return fmt.Errorf("%s needs a Hyper-V utility VM image: set windows.hyperv.utilityVMPath in config.json or windows.utilityVMPath in the node config", what)
	}
	if _, err := normalizeWinPath(uvm); err != nil {
		return fmt.Errorf("utility VM path: %w", err)
	}
	r.Config.HvPartition = true
	r.Config.HvRuntime = &HvRuntime{ImagePath: uvm}
	switch tier {
	case spec.TierMicroVM:
		r.enforce("isolation: microvm", "Hyper-V isolated HCS container (HvPartition): its own utility VM and kernel")
	case spec.TierProcess, spec.TierSession:
		r.enforce("isolation: "+string(tier), "Hyper-V isolated HCS container, as spec.windows.hyperv asks (stronger than the tier)")
	}
	return nil
}

// storage maps spec.windows.layerFolders (topmost image layer first, scratch
// last) and root.path onto Layers, LayerFolderPath and VolumePath, as
// Docker's HCS v1 client did.
func (r *Result) storage(s *specs.Spec) error {
	lf := s.Windows.LayerFolders
	if len(lf) < 2 {
		return fmt.Errorf("windows.layerFolders: need at least one image layer and the scratch layer, got %d folder(s)", len(lf))
	}
	for i, f := range lf {
		if _, err := normalizeWinPath(f); err != nil {
			return fmt.Errorf("windows.layerFolders[%d]: %w", i, err)
		}
	}
	for _, f := range lf[:len(lf)-1] {
		r.Config.Layers = append(r.Config.Layers, Layer{Path: f})
	}
	r.Config.LayerFolderPath = lf[len(lf)-1]
	if s.Root != nil && s.Root.Readonly {
		return errors.New("root.readonly: not supported for Windows containers (the scratch layer is the container's writable system drive)")
	}
	if r.Isolation == IsolationHyperV {
		// The utility VM mounts the scratch itself from LayerFolderPath.
		return nil
	}
	root := ""
	if s.Root != nil {
		root = s.Root.Path
	}
	switch {
	case root == "":
		r.MountScratch = true
	case volumeGUIDPath.MatchString(root):
		r.Config.VolumePath = strings.TrimSuffix(root, `\`)
	default:
		return fmt.Errorf(`root.path %q: must be empty (mxc mounts the scratch layer) or a volume GUID path \\?\Volume{GUID}\`, root)
	}
	return nil
}
