// Package spec holds the agent policy: its types, parsing, validation, the
// annotation codec, the node default/ceiling merge and the policy -> OCI spec
// transform. It is the one place where policy semantics live; drivers (linux/,
// hcs/) receive an Effective policy and never parse annotations themselves.
//
// spec imports no OS package (no os, syscall, x/sys): files are read by the
// caller and handed in as bytes, so every rule here is pure and testable.
package spec

// APIVersion and Kind identify an mxc agent policy document.
const (
	APIVersion = "mxc.dev/v1alpha1"
	Kind       = "AgentPolicy"
)

// Tier is the isolation tier that holds an agent.
type Tier string

const (
	TierProcess Tier = "process" // spec namespaces + Landlock + seccomp + caps + egress
	TierSession Tier = "session" // process + user namespace identity, pid/ipc/uts/cgroup ns, no host UI
	TierMicroVM Tier = "microvm" // hardware boundary (Hyper-V on Windows; refused on Linux)
)

// Mode says whether rules block (enforce) or are only logged (audit).
type Mode string

const (
	ModeEnforce Mode = "enforce"
	ModeAudit   Mode = "audit"
)

// Action is a network default: allow or deny.
type Action string

const (
	Allow Action = "allow"
	Deny  Action = "deny"
)

// AgentPolicy is the mxc.dev/v1alpha1 policy document. Field names follow
// Microsoft's MXC containment configuration 1.0.0 where the two overlap.
type AgentPolicy struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   Metadata    `json:"metadata,omitempty"`
	Identity   *Identity   `json:"identity,omitempty"`
	Isolation  Tier        `json:"isolation,omitempty"`
	Filesystem *Filesystem `json:"filesystem,omitempty"`
	Network    *Network    `json:"network,omitempty"`
	UI         *UI         `json:"ui,omitempty"`
	Resources  *Resources  `json:"resources,omitempty"`
	Process    *Process    `json:"process,omitempty"`
	Lifecycle  *Lifecycle  `json:"lifecycle,omitempty"`
	Mode       Mode        `json:"mode,omitempty"`
}

// Metadata names a policy.
type Metadata struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Identity is stamped on every audit event of the agent.
type Identity struct {
	Agent string `json:"agent,omitempty"`
}

// Filesystem is MXC 1.0.0's filesystem section. Paths are absolute, clean and
// refer to the container's view (the host's view for `sandbox`).
type Filesystem struct {
	ReadonlyPaths  []string `json:"readonlyPaths,omitempty"`
	ReadwritePaths []string `json:"readwritePaths,omitempty"`
	// DeniedPaths are masked even inside an allowed tree.
	DeniedPaths []string `json:"deniedPaths,omitempty"`
}

// Network is MXC 1.0.0's network section, with host names added to peers.
type Network struct {
	Egress  *Egress  `json:"egress,omitempty"`
	Ingress *Ingress `json:"ingress,omitempty"`
}

// Egress rules: default action, allow rules, deny rules (deny wins).
type Egress struct {
	Default Action `json:"default,omitempty"`
	Allow   []Rule `json:"allow,omitempty"`
	Deny    []Rule `json:"deny,omitempty"`
}

// Ingress rules: private-network inbound default and host loopback.
type Ingress struct {
	Default      Action `json:"default,omitempty"`
	HostLoopback Action `json:"hostLoopback,omitempty"`
}

// Rule matches destinations and ports. An empty To matches every address; an
// empty Ports matches every protocol and port.
type Rule struct {
	To    []Peer `json:"to,omitempty"`
	Ports []Port `json:"ports,omitempty"`
}

// Peer is a destination: exactly one of Host (mxc extension) or CIDR.
type Peer struct {
	// Host is a DNS name or a "*." wildcard (at least two labels after the star).
	Host string `json:"host,omitempty"`
	// AllowPublicSuffix marks a wildcard on a public suffix (*.github.io) as intended.
	AllowPublicSuffix bool     `json:"allowPublicSuffix,omitempty"`
	CIDR              string   `json:"cidr,omitempty"`
	Except            []string `json:"except,omitempty"`
}

// Protocol of a port selector.
type Protocol string

const (
	ProtoTCP  Protocol = "tcp"
	ProtoUDP  Protocol = "udp"
	ProtoICMP Protocol = "icmp"
	ProtoAny  Protocol = "any"
)

// Port selects a protocol and an optional destination port range.
type Port struct {
	Protocol Protocol `json:"protocol,omitempty"`
	Port     int      `json:"port,omitempty"`
	EndPort  int      `json:"endPort,omitempty"`
}

// UI is MXC 1.0.0's ui section.
type UI struct {
	Disable   bool   `json:"disable,omitempty"`
	Clipboard string `json:"clipboard,omitempty"` // none | read | write | all
	Injection *bool  `json:"injection,omitempty"`
}

// Resources are applied as cgroup limits (job object limits on Windows).
type Resources struct {
	CPUs   float64  `json:"cpus,omitempty"`
	Memory ByteSize `json:"memory,omitempty"` // "2Gi", "512M" or bytes
	Pids   int64    `json:"pids,omitempty"`
}

// ByteSize is a size in bytes; its JSON/YAML form accepts quantities ("2Gi").
type ByteSize int64

// Process holds MXC's process.timeout and mxc's process rules.
type Process struct {
	// Timeout in milliseconds (MXC 1.0.0); 0 means none.
	Timeout uint64 `json:"timeout,omitempty"`
	// Capabilities the agent may keep (upper bound on the spec's sets).
	// Empty means mxc's default agent set.
	Capabilities []string `json:"capabilities,omitempty"`
	// AllowPtrace lets the agent ptrace its own processes.
	AllowPtrace bool `json:"allowPtrace,omitempty"`
	// NoCapabilities keeps no capability at all (an empty Capabilities
	// means the default set, so "none" needs its own field). In an
	// Effective policy it is set when nothing is left to keep.
	NoCapabilities bool `json:"noCapabilities,omitempty"`
}

// Lifecycle is MXC 1.0.0's lifecycle section, recorded with the container.
type Lifecycle struct {
	DestroyOnExit  *bool `json:"destroyOnExit,omitempty"`
	PreservePolicy *bool `json:"preservePolicy,omitempty"`
}
