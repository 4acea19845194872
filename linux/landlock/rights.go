// Package landlock applies Landlock rulesets (filesystem access, and scoping
// of abstract unix sockets and signals) to the calling thread, best effort
// across ABI versions.
//
// The package is mechanism only: it knows which access rights each ABI
// version can handle and how to install a ruleset. Which rules an agent
// gets, and whether a kernel that cannot enforce one is acceptable, is
// decided by the caller (linux/enforce), before the container starts.
package landlock

// Filesystem access rights (uapi landlock.h), with the ABI that added them.
const (
	AccessFSExecute    uint64 = 1 << 0 // ABI 1
	AccessFSWriteFile  uint64 = 1 << 1
	AccessFSReadFile   uint64 = 1 << 2
	AccessFSReadDir    uint64 = 1 << 3
	AccessFSRemoveDir  uint64 = 1 << 4
	AccessFSRemoveFile uint64 = 1 << 5
	AccessFSMakeChar   uint64 = 1 << 6
	AccessFSMakeDir    uint64 = 1 << 7
	AccessFSMakeReg    uint64 = 1 << 8
	AccessFSMakeSock   uint64 = 1 << 9
	AccessFSMakeFifo   uint64 = 1 << 10
	AccessFSMakeBlock  uint64 = 1 << 11
	AccessFSMakeSym    uint64 = 1 << 12
	AccessFSRefer      uint64 = 1 << 13 // ABI 2
	AccessFSTruncate   uint64 = 1 << 14 // ABI 3
	AccessFSIoctlDev   uint64 = 1 << 15 // ABI 5
)

// Scopes (ABI 6).
const (
	ScopeAbstractUnixSocket uint64 = 1 << 0
	ScopeSignal             uint64 = 1 << 1
)

// restrict_self flags (ABI 7): audit logging of denials.
const (
	restrictSelfLogSameExecOff   = 1 << 0
	restrictSelfLogNewExecOn     = 1 << 1
	restrictSelfLogSubdomainsOff = 1 << 2
)

// MaxKnownABI is the newest ABI whose rights this package handles. A newer
// kernel is used at this level (its new rights stay unhandled, i.e. allowed,
// exactly as on a kernel of this ABI).
const MaxKnownABI = 7

// fsRightsByABI[v] is every filesystem right ABI v handles.
var fsRightsByABI = [...]uint64{
	0: 0,
	1: 1<<13 - 1,
	2: 1<<14 - 1,
	3: 1<<15 - 1,
	4: 1<<15 - 1,
	5: 1<<16 - 1,
	6: 1<<16 - 1,
	7: 1<<16 - 1,
}

// FSRights returns the filesystem rights ABI abi can handle.
func FSRights(abi int) uint64 {
	if abi <= 0 {
		return 0
	}
	if abi > MaxKnownABI {
		abi = MaxKnownABI
	}
	return fsRightsByABI[abi]
}

// Scopes returns the scopes ABI abi can handle.
func Scopes(abi int) uint64 {
	if abi >= 6 {
		return ScopeAbstractUnixSocket | ScopeSignal
	}
	return 0
}

// SupportsAuditLog reports whether ABI abi has restrict_self's logging flags.
func SupportsAuditLog(abi int) bool { return abi >= 7 }

// Rights granted by the two kinds of path rule.
const (
	// ReadOnly lets the agent read, list and execute.
	ReadOnly = AccessFSExecute | AccessFSReadFile | AccessFSReadDir
	// ReadWrite is every filesystem right.
	ReadWrite uint64 = 1<<16 - 1
	// DeviceRW is what the implicit device rules grant: read and write, and
	// ioctl (terminals need it).
	DeviceRW = AccessFSReadFile | AccessFSWriteFile | AccessFSTruncate | AccessFSIoctlDev
	// fileRights are the rights that make sense on a non-directory; the
	// kernel refuses a rule on a file that names others.
	fileRights = AccessFSExecute | AccessFSWriteFile | AccessFSReadFile | AccessFSTruncate | AccessFSIoctlDev
)

// PathRule grants Access beneath Path (the path itself if it is a file).
type PathRule struct {
	Path   string `json:"path"`
	Access uint64 `json:"access"`
}

// Ruleset is what to enforce. With no Paths and HandleFS false, the
// filesystem is not restricted by Landlock at all (only scopes apply).
type Ruleset struct {
	// HandleFS restricts the filesystem to the Paths rules: everything not
	// granted is denied. False leaves file access to the mount layer.
	HandleFS bool       `json:"handleFS,omitempty"`
	Paths    []PathRule `json:"paths,omitempty"`
	// Scopes to restrict (ScopeAbstractUnixSocket, ScopeSignal).
	Scoped uint64 `json:"scoped,omitempty"`
	// LogNewExec asks the kernel (ABI 7) to audit-log denials of the
	// programs exec'd after restrict_self, not only of the caller.
	LogNewExec bool `json:"logNewExec,omitempty"`
}

// Empty reports whether r restricts nothing.
func (r *Ruleset) Empty() bool { return r == nil || (!r.HandleFS && r.Scoped == 0) }
