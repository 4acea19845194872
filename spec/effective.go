package spec

// Effective is the resolved policy of one container: node default, named
// policy reference, annotations and ceiling merged, validated and defaulted.
// It is computed once at create, stored with the container state and handed
// to the drivers; they never look at annotations.
type Effective struct {
	// Policy is fully defaulted: Isolation, Mode, Network.Egress.Default,
	// Network.Ingress.* and UI.Clipboard are never empty.
	Policy AgentPolicy `json:"policy"`
	// Digest is "sha256:<hex>" of the canonical JSON of Policy.
	Digest string `json:"digest"`
	// Sources says, in merge order, where each layer came from
	// ("node default", "policy ref coding-agent", "annotation io.mxc.policy", ...).
	Sources []string `json:"sources,omitempty"`
	// Notes are fields that were read but have no meaning for an OCI container
	// (MXC process.commandLine, backend sections): reported, never used.
	Notes []string `json:"notes,omitempty"`
}

// NodeConfig is /etc/mxc/config.yaml: the node's default policy, its ceiling,
// named policies for io.mxc.policy.ref, and driver settings.
type NodeConfig struct {
	// Default applies to containers without any io.mxc.* annotation. Nil
	// means such containers run as plain OCI containers (runc behaviour),
	// unless RequirePolicy is set.
	Default *AgentPolicy `json:"default,omitempty"`
	// RequirePolicy refuses to create a container no policy applies to.
	RequirePolicy bool `json:"requirePolicy,omitempty"`
	// Ceiling bounds what any container may ask for; annotations tighten,
	// never loosen past it.
	Ceiling *Ceiling `json:"ceiling,omitempty"`
	// Policies are named policies for io.mxc.policy.ref, inline.
	Policies map[string]AgentPolicy `json:"policies,omitempty"`
	// PolicyDir holds further named policies as <name>.yaml or <name>.json;
	// the caller reads them (spec does no I/O) through a PolicyLoader.
	PolicyDir string `json:"policyDir,omitempty"`
	// AllowDegraded lets a container run when the kernel cannot enforce a rule
	// (e.g. an old Landlock ABI); the degradation is logged and recorded in state.
	AllowDegraded bool `json:"allowDegraded,omitempty"`
	// DNS configures the egress DNS gate.
	DNS *DNSConfig `json:"dns,omitempty"`
	// Session configures the session tier's user namespace id ranges.
	Session *SessionConfig `json:"session,omitempty"`
	// Windows configures the HCS driver.
	Windows *WindowsConfig `json:"windows,omitempty"`
}

// DNSConfig is the DNS gate's upstream and TTL clamp.
type DNSConfig struct {
	// Upstreams are "ip:port" resolvers; empty means the host's resolv.conf.
	Upstreams []string `json:"upstreams,omitempty"`
	// MinTTL and MaxTTL clamp the allow-set element timeout, in seconds.
	MinTTL uint32 `json:"minTTL,omitempty"`
	MaxTTL uint32 `json:"maxTTL,omitempty"`
}

// SessionConfig sets the host id range handed out to session-tier agents.
type SessionConfig struct {
	// IDBase is the first host uid/gid given to agents (default 1000000000 / 2^30 region).
	IDBase uint32 `json:"idBase,omitempty"`
	// IDSize is the size of each agent's range (default 65536).
	IDSize uint32 `json:"idSize,omitempty"`
	// Slots is how many ranges exist (default 1024).
	Slots uint32 `json:"slots,omitempty"`
}

// WindowsConfig holds HCS driver defaults.
type WindowsConfig struct {
	// UtilityVMPath is the Hyper-V utility VM image used when the spec names none.
	UtilityVMPath string `json:"utilityVMPath,omitempty"`
}

// Ceiling is the most any container on the node may be granted.
type Ceiling struct {
	// MinIsolation is the weakest tier allowed (process < session < microvm).
	MinIsolation Tier `json:"minIsolation,omitempty"`
	// ReadwritePaths / ReadonlyPaths: every path a policy grants must lie
	// under one of these (readonly grants may also lie under a readwrite root).
	ReadwritePaths []string `json:"readwritePaths,omitempty"`
	ReadonlyPaths  []string `json:"readonlyPaths,omitempty"`
	// DeniedPaths are always denied, whatever the policy says.
	DeniedPaths []string `json:"deniedPaths,omitempty"`
	// EgressAllow bounds egress allow rules: each allowed destination must be
	// covered by one of these (host wildcard or CIDR). Empty means no egress.
	EgressAllow []Rule `json:"egressAllow,omitempty"`
	// AllowEgressDefaultAllow permits network.egress.default: allow.
	AllowEgressDefaultAllow bool `json:"allowEgressDefaultAllow,omitempty"`
	// AllowIngress permits network.ingress.default: allow and
	// network.ingress.hostLoopback: allow.
	AllowIngress bool `json:"allowIngress,omitempty"`
	// Capabilities an agent may keep at most.
	Capabilities []string `json:"capabilities,omitempty"`
	AllowPtrace  bool     `json:"allowPtrace,omitempty"`
	// AllowUI permits ui.disable: false / clipboard other than none / injection.
	AllowUI bool `json:"allowUI,omitempty"`
	// AllowAudit permits mode: audit (rules logged, not enforced).
	AllowAudit bool `json:"allowAudit,omitempty"`
	// MaxResources caps cpus, memory and pids (and supplies them when absent).
	MaxResources *Resources `json:"maxResources,omitempty"`
	// MaxTimeout caps process.timeout in ms (and supplies it when absent).
	MaxTimeout uint64 `json:"maxTimeout,omitempty"`
}

// PolicyLoader returns the bytes of the named policy from PolicyDir, or an
// error wrapping fs.ErrNotExist-like semantics when there is none. Supplied
// by the caller so that spec stays free of I/O.
type PolicyLoader func(name string) ([]byte, error)
