package hcs

// Mirrors of hcsshim's public schema v1 types (hcsshim.ContainerConfig and
// friends, aliases of internal/hcs/schema1) and of hcn.AclPolicySetting.
// hcsshim declares them only for GOOS=windows; the translation must build and
// be tested on Linux, so it produces these mirrors. Field names, types and
// JSON tags are copied from hcsshim v0.15.0; convert_windows.go converts each
// type field by field (a struct conversion for the leaf types), so a drift in
// hcsshim breaks the Windows build instead of silently dropping a field.

// ContainerConfig mirrors hcsshim.ContainerConfig (HCS schema v1).
type ContainerConfig struct {
	SystemType                  string              // always "Container"
	Name                        string              // container id
	Owner                       string              `json:",omitempty"`
	VolumePath                  string              `json:",omitempty"` // scratch volume, \\?\Volume{GUID} (process isolation)
	IgnoreFlushesDuringBoot     bool                `json:",omitempty"`
	LayerFolderPath             string              `json:",omitempty"` // scratch layer folder
	Layers                      []Layer             // read-only image layers, topmost first
	Credentials                 string              `json:",omitempty"`
	ProcessorCount              uint32              `json:",omitempty"`
	ProcessorWeight             uint64              `json:",omitempty"`
	ProcessorMaximum            int64               `json:",omitempty"` // share of all host CPUs x 10000
	StorageIOPSMaximum          uint64              `json:",omitempty"`
	StorageBandwidthMaximum     uint64              `json:",omitempty"`
	StorageSandboxSize          uint64              `json:",omitempty"`
	MemoryMaximumInMB           int64               `json:",omitempty"`
	HostName                    string              `json:",omitempty"`
	MappedDirectories           []MappedDir         `json:",omitempty"`
	MappedPipes                 []MappedPipe        `json:",omitempty"`
	HvPartition                 bool                // Hyper-V isolation
	NetworkSharedContainerName  string              `json:",omitempty"`
	EndpointList                []string            `json:",omitempty"`
	HvRuntime                   *HvRuntime          `json:",omitempty"`
	Servicing                   bool                `json:",omitempty"`
	AllowUnqualifiedDNSQuery    bool                `json:",omitempty"`
	DNSSearchList               string              `json:",omitempty"`
	ContainerType               string              `json:",omitempty"`
	TerminateOnLastHandleClosed bool                `json:",omitempty"`
	MappedVirtualDisks          []MappedVirtualDisk `json:",omitempty"`
	AssignedDevices             []AssignedDevice    `json:",omitempty"`
}

// Layer mirrors hcsshim.Layer. ID is the GUID Windows derives from the layer
// folder's name (hcsshim.NameToGuid, a Windows API), so Translate leaves it
// empty and the driver fills it in.
type Layer struct {
	ID   string
	Path string
}

// MappedDir mirrors hcsshim.MappedDir: a host directory visible in the container.
type MappedDir struct {
	HostPath          string
	ContainerPath     string
	ReadOnly          bool
	BandwidthMaximum  uint64
	IOPSMaximum       uint64
	CreateInUtilityVM bool
	LinuxMetadata     bool `json:",omitempty"`
}

// MappedPipe mirrors hcsshim.MappedPipe: a host named pipe visible in the container.
type MappedPipe struct {
	HostPath          string
	ContainerPipeName string
}

// HvRuntime mirrors hcsshim.HvRuntime: the Hyper-V utility VM settings.
type HvRuntime struct {
	ImagePath           string `json:",omitempty"`
	SkipTemplate        bool   `json:",omitempty"`
	LinuxInitrdFile     string `json:",omitempty"`
	LinuxKernelFile     string `json:",omitempty"`
	LinuxBootParameters string `json:",omitempty"`
	BootSource          string `json:",omitempty"`
	WritableBootSource  bool   `json:",omitempty"`
}

// MappedVirtualDisk mirrors hcsshim.MappedVirtualDisk.
type MappedVirtualDisk struct {
	HostPath          string `json:",omitempty"`
	ContainerPath     string
	CreateInUtilityVM bool   `json:",omitempty"`
	ReadOnly          bool   `json:",omitempty"`
	Cache             string `json:",omitempty"`
	AttachOnly        bool   `json:",omitempty"`
}

// AssignedDevice mirrors hcsshim.AssignedDevice.
type AssignedDevice struct {
	InterfaceClassGUID string `json:"InterfaceClassGuid,omitempty"`
}

// ProcessConfig mirrors hcsshim.ProcessConfig, minus the Linux-only
// OCISpecification (a *json.RawMessage mxc never sets for Windows).
type ProcessConfig struct {
	ApplicationName   string            `json:",omitempty"`
	CommandLine       string            `json:",omitempty"`
	CommandArgs       []string          `json:",omitempty"`
	User              string            `json:",omitempty"`
	WorkingDirectory  string            `json:",omitempty"`
	Environment       map[string]string `json:",omitempty"`
	EmulateConsole    bool              `json:",omitempty"`
	CreateStdInPipe   bool              `json:",omitempty"`
	CreateStdOutPipe  bool              `json:",omitempty"`
	CreateStdErrPipe  bool              `json:",omitempty"`
	ConsoleSize       [2]uint           `json:",omitempty"`
	CreateInUtilityVm bool              `json:",omitempty"` //nolint:revive // hcsshim's spelling
}

// ACL action, direction and rule type values (hcn.ActionType, DirectionType, RuleType).
const (
	ActionAllow = "Allow"
	ActionBlock = "Block"

	DirectionIn  = "In"
	DirectionOut = "Out"

	// RuleTypeSwitch makes VFP (virtual switch) rules: they hold for every
	// process in the container, whatever its user, and the container cannot
	// change them.
	RuleTypeSwitch = "Switch"
)

// ACL mirrors hcn.AclPolicySetting, the settings of an HNS endpoint policy
// of type "ACL". A lower Priority is evaluated first.
type ACL struct {
	Protocols       string `json:",omitempty"` // "6" tcp, "17" udp, "1" icmp, "58" icmpv6; empty: all
	Action          string `json:""`
	Direction       string `json:""`
	LocalAddresses  string `json:",omitempty"`
	RemoteAddresses string `json:",omitempty"`
	LocalPorts      string `json:",omitempty"`
	RemotePorts     string `json:",omitempty"`
	RuleType        string `json:",omitempty"`
	Priority        uint16 `json:",omitempty"`
}
