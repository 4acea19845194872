package hcs

import (
	"fmt"
	"math"

	hcsann "github.com/Microsoft/hcsshim/pkg/annotations"
	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

const mib = 1 << 20

// setting is one resource value and where it came from.
type setting struct {
	v      uint64
	src    string // "windows.resources.cpu.count" or an annotation key
	byAnno bool
}

func (s *setting) set() bool { return s != nil }

// pick returns the annotation value when there is one (hcsshim lets its
// annotations override the spec), else the spec value.
func pick(annV *uint64, annK string, specV *uint64, specK string) *setting {
	if annV != nil {
		return &setting{v: *annV, src: "annotation " + annK, byAnno: true}
	}
	if specV != nil && *specV > 0 {
		return &setting{v: *specV, src: specK}
	}
	return nil
}

// lower keeps the smaller of two settings; both are limits.
func lower(a, b *setting) *setting {
	switch {
	case a == nil:
		return b
	case b == nil || a.v <= b.v:
		return a
	}
	return b
}

func u16(p *uint16) *uint64 {
	if p == nil {
		return nil
	}
	v := uint64(*p)
	return &v
}

// resources maps memory, CPU and storage limits. Sources, strongest last:
// spec.windows.resources, hcsshim's annotations (which override the spec,
// as in hcsshim), the policy's resources (which are a ceiling: a spec value
// above it is lowered, an annotation above it is a conflict and an error).
func (r *Result) resources(s *specs.Spec, pol *spec.AgentPolicy, ann *annotations, opts Options) error {
	wr := s.Windows.Resources
	if wr == nil {
		wr = &specs.WindowsResources{}
	}
	var pres *spec.Resources
	if pol != nil {
		pres = pol.Resources
	}
	hv := r.Isolation == IsolationHyperV
	if !hv {
		for _, k := range []struct {
			v *uint64
			k string
		}{{ann.vmMemoryMB, hcsann.MemorySizeInMB}, {ann.vmCPUCount, hcsann.ProcessorCount}, {ann.vmCPULimit, hcsann.ProcessorLimit},
			{ann.vmCPUWeight, hcsann.ProcessorWeight}, {ann.vmStorageBps, hcsann.StorageQoSBandwidthMaximum}, {ann.vmStorageIop, hcsann.StorageQoSIopsMaximum}} {
			if k.v != nil {
				r.note("annotation %s: process isolation has no utility VM; not applied", k.k)
			}
		}
	}
	if err := r.memory(wr, pres, ann, hv); err != nil {
		return err
	}
	if err := r.cpu(wr, pres, ann, hv, opts); err != nil {
		return err
	}
	r.storageQoS(wr, ann, hv)
	if pres != nil && pres.Pids > 0 {
		if err := r.degrade(opts, fmt.Sprintf("resources.pids %d", pres.Pids), "HCS schema v1 has no process-count limit for a container"); err != nil {
			return err
		}
	}
	return nil
}

func (r *Result) memory(wr *specs.WindowsResources, pres *spec.Resources, ann *annotations, hv bool) error {
	var specMB *uint64
	if wr.Memory != nil && wr.Memory.Limit != nil && *wr.Memory.Limit > 0 {
		if *wr.Memory.Limit < mib {
			return fmt.Errorf("windows.resources.memory.limit: %d bytes is below HCS's 1 MiB granularity", *wr.Memory.Limit)
		}
		v := *wr.Memory.Limit / mib // round down: never more than asked
		specMB = &v
	}
	m := pick(ann.memoryMB, hcsann.ContainerMemorySizeInMB, specMB, "windows.resources.memory.limit")
	if hv && ann.vmMemoryMB != nil {
		// In HCS v1 the Hyper-V container is its VM: both bound the same memory.
		m = lower(m, &setting{v: *ann.vmMemoryMB, src: "annotation " + hcsann.MemorySizeInMB, byAnno: true})
	}
	if pres != nil && pres.Memory > 0 {
		if pres.Memory < mib {
			return fmt.Errorf("resources.memory: %d bytes is below HCS's 1 MiB granularity", pres.Memory)
		}
		polMB := uint64(pres.Memory) / mib
		for _, a := range []struct {
			v *uint64
			k string
		}{{ann.memoryMB, hcsann.ContainerMemorySizeInMB}, {ann.vmMemoryMB, hcsann.MemorySizeInMB}} {
			if a.v != nil && *a.v > polMB && (hv || a.k == hcsann.ContainerMemorySizeInMB) {
				return fmt.Errorf("annotation %s=%d (MB) conflicts with policy resources.memory (%d MB): an annotation may not raise the policy's limit", a.k, *a.v, polMB)
			}
		}
		if m != nil && m.v > polMB {
			r.note("%s %d MB lowered to policy resources.memory %d MB", m.src, m.v, polMB)
			m = nil
		}
		m = lower(m, &setting{v: polMB, src: "policy"})
		mech := fmt.Sprintf("MemoryMaximumInMB=%d (job object memory limit)", m.v)
		if hv {
			mech = fmt.Sprintf("MemoryMaximumInMB=%d (utility VM memory and job object limit)", m.v)
		}
		r.enforce("resources.memory", mech)
	}
	if m != nil {
		if m.v > math.MaxInt64 {
			m.v = math.MaxInt64
		}
		r.Config.MemoryMaximumInMB = int64(m.v)
	}
	return nil
}

func (r *Result) cpu(wr *specs.WindowsResources, pres *spec.Resources, ann *annotations, hv bool, opts Options) error {
	c := wr.CPU
	if c == nil {
		c = &specs.WindowsCPUResources{}
	}
	if len(c.Affinity) > 0 {
		return fmt.Errorf("windows.resources.cpu.affinity: CPU affinity is not supported by HCS schema v1")
	}
	count := pick(ann.cpuCount, hcsann.ContainerProcessorCount, c.Count, "windows.resources.cpu.count")
	limit := pick(ann.cpuLimit, hcsann.ContainerProcessorLimit, u16(c.Maximum), "windows.resources.cpu.maximum")
	weight := pick(ann.cpuWeight, hcsann.ContainerProcessorWeight, u16(c.Shares), "windows.resources.cpu.shares")
	if hv {
		if ann.vmCPUCount != nil {
			count = lower(count, &setting{v: *ann.vmCPUCount, src: "annotation " + hcsann.ProcessorCount, byAnno: true})
		}
		if ann.vmCPULimit != nil {
			limit = lower(limit, &setting{v: *ann.vmCPULimit, src: "annotation " + hcsann.ProcessorLimit, byAnno: true})
		}
		if weight == nil && ann.vmCPUWeight != nil {
			weight = &setting{v: *ann.vmCPUWeight, src: "annotation " + hcsann.ProcessorWeight, byAnno: true}
		}
	} else {
		// On a process-isolated container all three set the job object's
		// one CPU rate control; hcsshim refuses more than one, so do we.
		n := 0
		for _, x := range []*setting{count, limit, weight} {
			if x.set() {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("windows.resources.cpu: count, maximum and shares (or their io.microsoft.container.processor.* annotations) are mutually exclusive for process-isolated containers")
		}
	}
	host := uint64(opts.HostCPUs)
	if count.set() && host > 0 && count.v > host {
		r.note("%s %d lowered to the host's %d processors", count.src, count.v, host)
		count.v = host
	}

	var want float64
	if pres != nil {
		want = pres.CPUs
	}
	switch {
	case want <= 0:
		// No policy cap: the spec's settings as they are.
	case opts.HostCPUs <= 0:
		return fmt.Errorf("resources.cpus: the host's processor count is unknown, cannot express the cap")
	case want >= float64(opts.HostCPUs):
		r.enforce("resources.cpus", fmt.Sprintf("no cap needed: %g CPUs is at least the host's %d processors", want, opts.HostCPUs))
	case hv:
		if err := r.cpuHyperV(want, &count, &limit, opts); err != nil {
			return err
		}
	default:
		if err := r.cpuProcess(want, &count, &limit, &weight, opts); err != nil {
			return err
		}
	}
	if count.set() {
		r.Config.ProcessorCount = uint32(min(count.v, math.MaxUint32))
	}
	if limit.set() {
		r.Config.ProcessorMaximum = int64(limit.v)
	}
	if weight.set() {
		r.Config.ProcessorWeight = weight.v
	}
	return nil
}

// cpuProcess caps a process-isolated container at want CPUs with one job
// object CPU rate control: ProcessorCount when the spec's count is within
// the policy, else ProcessorMaximum (a share of all host processors x 10000).
func (r *Result) cpuProcess(want float64, count, limit, weight **setting, opts Options) error {
	h := float64(opts.HostCPUs)
	capMax := uint64(math.Floor(want * 10000 / h))
	if capMax < 1 {
		capMax = 1
	}
	if (*weight).set() {
		if (*weight).byAnno {
			return fmt.Errorf("%s conflicts with policy resources.cpus %g: a job object takes either a CPU weight or a hard cap, and the policy's cap must hold", (*weight).src, want)
		}
		r.note("%s %d dropped: a job object takes either a CPU weight or a hard cap, and policy resources.cpus is a cap", (*weight).src, (*weight).v)
		*weight = nil
	}
	switch {
	case (*count).set() && float64((*count).v) <= want:
		r.enforce("resources.cpus", fmt.Sprintf("ProcessorCount=%d from %s (within the policy's %g; job object hard cap)", (*count).v, (*count).src, want))
		return nil
	case (*count).set():
		if (*count).byAnno {
			return fmt.Errorf("%s=%d conflicts with policy resources.cpus %g: an annotation may not raise the policy's limit", (*count).src, (*count).v, want)
		}
		r.note("%s %d replaced by the policy's cap of %g CPUs", (*count).src, (*count).v, want)
		*count = nil
	case (*limit).set() && (*limit).v <= capMax:
		r.enforce("resources.cpus", fmt.Sprintf("ProcessorMaximum=%d from %s (within the policy's %d; job object hard cap)", (*limit).v, (*limit).src, capMax))
		return nil
	case (*limit).set():
		if (*limit).byAnno {
			return fmt.Errorf("%s=%d conflicts with policy resources.cpus %g (%d of 10000 on this %d-processor host): an annotation may not raise the policy's limit", (*limit).src, (*limit).v, want, capMax, opts.HostCPUs)
		}
		r.note("%s %d lowered to %d (policy resources.cpus %g on %d processors)", (*limit).src, (*limit).v, capMax, want, opts.HostCPUs)
	}
	*limit = &setting{v: capMax, src: "policy"}
	r.enforce("resources.cpus", fmt.Sprintf("ProcessorMaximum=%d (%g of %d processors; job object hard cap)", capMax, want, opts.HostCPUs))
	return nil
}

// cpuHyperV caps a v1 Hyper-V container, whose CPU settings shape its utility
// VM: ProcessorCount virtual processors, each held to ProcessorMaximum/10000
// of a processor when the policy asks for a fraction.
func (r *Result) cpuHyperV(want float64, count, limit **setting, opts Options) error {
	k := uint64(math.Ceil(want))
	switch {
	case !(*count).set():
	case (*count).v <= k:
		k = (*count).v
	case (*count).byAnno:
		return fmt.Errorf("%s=%d conflicts with policy resources.cpus %g: an annotation may not raise the policy's limit", (*count).src, (*count).v, want)
	default:
		r.note("%s %d lowered to %d virtual processors (policy resources.cpus %g)", (*count).src, (*count).v, k, want)
	}
	*count = &setting{v: k, src: "policy"}
	mech := fmt.Sprintf("ProcessorCount=%d virtual processors", k)
	if float64(k) > want {
		capVP := uint64(math.Floor(want / float64(k) * 10000))
		if capVP < 1 {
			capVP = 1
		}
		switch {
		case (*limit).set() && (*limit).v <= capVP:
		case (*limit).set() && (*limit).byAnno:
			return fmt.Errorf("%s=%d conflicts with policy resources.cpus %g (%d of 10000 per virtual processor): an annotation may not raise the policy's limit", (*limit).src, (*limit).v, want, capVP)
		default:
			if (*limit).set() {
				r.note("%s %d lowered to %d per virtual processor (policy resources.cpus %g)", (*limit).src, (*limit).v, capVP, want)
			}
			*limit = &setting{v: capVP, src: "policy"}
		}
		mech += fmt.Sprintf(", ProcessorMaximum=%d (hypervisor limit per virtual processor)", (*limit).v)
	}
	r.enforce("resources.cpus", mech)
	return nil
}

// storageQoS maps storage limits; no policy field governs them.
func (r *Result) storageQoS(wr *specs.WindowsResources, ann *annotations, hv bool) {
	st := wr.Storage
	if st == nil {
		st = &specs.WindowsStorageResources{}
	}
	bps := pick(ann.storageBps, hcsann.ContainerStorageQoSBandwidthMaximum, st.Bps, "windows.resources.storage.bps")
	iops := pick(ann.storageIops, hcsann.ContainerStorageQoSIopsMaximum, st.Iops, "windows.resources.storage.iops")
	if hv {
		if ann.vmStorageBps != nil {
			bps = lower(bps, &setting{v: *ann.vmStorageBps})
		}
		if ann.vmStorageIop != nil {
			iops = lower(iops, &setting{v: *ann.vmStorageIop})
		}
	}
	if bps.set() {
		r.Config.StorageBandwidthMaximum = bps.v
	}
	if iops.set() {
		r.Config.StorageIOPSMaximum = iops.v
	}
	if st.SandboxSize != nil {
		r.Config.StorageSandboxSize = *st.SandboxSize
	}
}
