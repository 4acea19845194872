package spec

import "sort"

// allCapabilities are the Linux capabilities known to the kernel (through
// CAP_CHECKPOINT_RESTORE, 40), in the kernel's numbering: the index is the
// capability's number (linux/capability.h). A name outside this list is a
// typo.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DangerousCapabilities are never kept by an agent unless the node ceiling
// allows them: each one lets a process undo the policy (NET_ADMIN rewrites
// the egress filter, NET_RAW forges packets around it, SYS_ADMIN mounts over
// masked paths, SYS_PTRACE reads other processes' memory).
var DangerousCapabilities = []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}

// DefaultAgentCapabilities is what an agent may keep when its policy names
// none: docker's default set without NET_RAW and MKNOD.
var DefaultAgentCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// CapabilityNumber is c's number in linux/capability.h, or -1 for a name
// the kernel does not know.
func CapabilityNumber(c string) int {
	for i, k := range allCapabilities {
		if k == c {
			return i
		}
	}
	return -1
}

// CapabilityName is the name of capability number n ("" beyond the list).
func CapabilityName(n int) string {
	if n < 0 || n >= len(allCapabilities) {
		return ""
	}
	return allCapabilities[n]
}

func isKnownCapability(c string) bool {
	for _, k := range allCapabilities {
		if k == c {
			return true
		}
	}
	return false
}

func isDangerous(c string) bool {
	for _, k := range DangerousCapabilities {
		if k == c {
			return true
		}
	}
	return false
}

type stringSet map[string]bool

func setOf(l []string) stringSet {
	s := make(stringSet, len(l))
	for _, e := range l {
		s[e] = true
	}
	return s
}

func (s stringSet) sorted() []string {
	out := make([]string, 0, len(s))
	for e := range s {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// capabilityBound is the most a ceiling lets an agent keep: its list, or
// (no list, or no ceiling) every capability but the dangerous ones;
// allowPtrace adds CAP_SYS_PTRACE.
func capabilityBound(c *Ceiling) stringSet {
	var b stringSet
	if c != nil && len(c.Capabilities) > 0 {
		b = setOf(c.Capabilities)
	} else {
		b = stringSet{}
		for _, k := range allCapabilities {
			if !isDangerous(k) {
				b[k] = true
			}
		}
	}
	if c != nil && c.AllowPtrace {
		b["CAP_SYS_PTRACE"] = true
	}
	return b
}
