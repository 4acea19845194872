package hcs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	hcsann "github.com/Microsoft/hcsshim/pkg/annotations"
)

// annHostProcess asks for a host process container (no isolation at all).
const annHostProcess = hcsann.HostProcessContainer

// annotations are hcsshim's own io.microsoft.* settings found on the spec.
// All parsing sits here (as in hcsshim's internal/oci): a malformed value is
// an error naming the annotation, never a silently used default.
type annotations struct {
	// Container-level overrides, as hcsshim applies them to HCS v1 fields.
	memoryMB     *uint64 // io.microsoft.container.memory.sizeinmb
	cpuCount     *uint64 // io.microsoft.container.processor.count
	cpuLimit     *uint64 // io.microsoft.container.processor.limit (1..10000)
	cpuWeight    *uint64 // io.microsoft.container.processor.weight
	storageBps   *uint64
	storageIops  *uint64
	vmMemoryMB   *uint64 // io.microsoft.virtualmachine.computetopology.memory.sizeinmb
	vmCPUCount   *uint64
	vmCPULimit   *uint64
	vmCPUWeight  *uint64
	vmStorageBps *uint64
	vmStorageIop *uint64

	hostProcess         bool
	noWritableShares    bool
	noWritableSharesKey string
	noGMSA              bool
	noGMSAKey           string

	notes []string
}

// parseAnnotations reads the io.microsoft.* annotations (and hcsshim's
// microsoft.com/hostprocess-* ones). Those with an HCS v1 field are applied
// by Translate; those that ask for a protection v1 cannot give are refused;
// the rest are kept on the spec and recorded as not applied.
func parseAnnotations(a map[string]string) (*annotations, error) {
	out := &annotations{}
	uints := []struct {
		key string
		dst **uint64
		max uint64
	}{
		{hcsann.ContainerMemorySizeInMB, &out.memoryMB, 0},
		{hcsann.ContainerProcessorCount, &out.cpuCount, 0},
		{hcsann.ContainerProcessorLimit, &out.cpuLimit, 10000},
		{hcsann.ContainerProcessorWeight, &out.cpuWeight, 10000},
		{hcsann.ContainerStorageQoSBandwidthMaximum, &out.storageBps, 0},
		{hcsann.ContainerStorageQoSIopsMaximum, &out.storageIops, 0},
		{hcsann.MemorySizeInMB, &out.vmMemoryMB, 0},
		{hcsann.ProcessorCount, &out.vmCPUCount, 0},
		{hcsann.ProcessorLimit, &out.vmCPULimit, 10000},
		{hcsann.ProcessorWeight, &out.vmCPUWeight, 10000},
		{hcsann.StorageQoSBandwidthMaximum, &out.vmStorageBps, 0},
		{hcsann.StorageQoSIopsMaximum, &out.vmStorageIop, 0},
	}
	handled := map[string]bool{}
	for _, u := range uints {
		handled[u.key] = true
		v, ok := a[u.key]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q is not a non-negative integer", u.key, v)
		}
		if u.max > 0 && n > u.max {
			return nil, fmt.Errorf("annotation %s: %d is above the maximum %d", u.key, n, u.max)
		}
		if n == 0 {
			continue // hcsshim treats 0 as "not set"
		}
		*u.dst = &n
	}

	bools := []struct {
		key string
		fn  func(string)
	}{
		{annHostProcess, func(string) { out.hostProcess = true }},
		{hcsann.DisableWritableFileShares, func(k string) { out.noWritableShares, out.noWritableSharesKey = true, k }},
		{hcsann.WCOWDisableGMSA, func(k string) { out.noGMSA, out.noGMSAKey = true, k }},
		{hcsann.DisableUnsafeOperations, func(k string) {
			// Expands as hcsshim's AnnotationExpansionMap says.
			out.noWritableShares, out.noWritableSharesKey = true, k
			out.noGMSA, out.noGMSAKey = true, k
		}},
		{hcsann.DisableHostProcessContainer, func(string) {}}, // mxc never makes one
		{hcsann.VSMBNoDirectMap, func(k string) {
			out.notes = append(out.notes, "annotation "+k+": HCS schema v1 maps directories without VSMB options; no direct map is used")
		}},
	}
	for _, b := range bools {
		handled[b.key] = true
		v, ok := a[b.key]
		if !ok {
			continue
		}
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %q is not a boolean", b.key, v)
		}
		if on {
			b.fn(b.key)
		}
	}

	// Asks for a guest security policy (confidential containers): HCS v1
	// has no such thing, and running without it would weaken what was asked.
	for _, k := range []string{hcsann.WCOWSecurityPolicy, hcsann.WCOWSecurityPolicyEnforcer, hcsann.WCOWGuestStateFile} {
		handled[k] = true
		if v, ok := a[k]; ok && v != "" {
			return nil, fmt.Errorf("annotation %s: confidential Windows containers need HCS schema v2, which hcsshim does not export; refused rather than run without the requested security policy", k)
		}
	}

	var rest []string
	for k := range a {
		if handled[k] {
			continue
		}
		if strings.HasPrefix(k, "io.microsoft.") || strings.HasPrefix(k, "microsoft.com/") {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out.notes = append(out.notes, "annotation "+k+": kept on the spec, no HCS schema v1 setting applies it")
	}
	return out, nil
}
