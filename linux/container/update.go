//go:build linux

package container

import (
	"errors"
	"fmt"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Update implements `update`: fields left nil keep their value. With an
// agent policy, a limit may be lowered but never raised past the policy's.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	lock, err := AcquireLock(r.Root, id)
	if err != nil {
		return err
	}
	defer lock.Release()
	c, err := r.loadLocked(id)
	if err != nil {
		return err
	}
	if eff, err := LoadPolicy(r.stateDir(id)); err != nil {
		return err
	} else if eff != nil && eff.Policy.Resources != nil {
		if err := checkUpdateAgainstPolicy(res, int64(eff.Policy.Resources.Memory), eff.Policy.Resources.Pids, eff.Policy.Resources.CPUs); err != nil {
			return err
		}
	}
	config := c.Config()
	cr := config.Cgroups.Resources
	if m := res.Memory; m != nil {
		if m.Limit != nil {
			cr.Memory = *m.Limit
			if *m.Limit == -1 && m.Swap == nil {
				cr.MemorySwap = 0
			}
		}
		if m.Reservation != nil {
			cr.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			cr.MemorySwap = *m.Swap
		}
		if m.CheckBeforeUpdate != nil {
			cr.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
	}
	if cpu := res.CPU; cpu != nil {
		if cpu.Shares != nil {
			cr.CpuShares = *cpu.Shares
			cr.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*cpu.Shares)
		}
		if cpu.Quota != nil {
			cr.CpuQuota = *cpu.Quota
		}
		if cpu.Period != nil {
			cr.CpuPeriod = *cpu.Period
		}
		if cpu.Burst != nil {
			cr.CpuBurst = cpu.Burst
		}
		if cpu.RealtimePeriod != nil {
			cr.CpuRtPeriod = *cpu.RealtimePeriod
		}
		if cpu.RealtimeRuntime != nil {
			cr.CpuRtRuntime = *cpu.RealtimeRuntime
		}
		if cpu.Cpus != "" {
			cr.CpusetCpus = cpu.Cpus
		}
		if cpu.Mems != "" {
			cr.CpusetMems = cpu.Mems
		}
		if cpu.Idle != nil {
			cr.CPUIdle = cpu.Idle
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		cr.PidsLimit = res.Pids.Limit
	}
	if b := res.BlockIO; b != nil && b.Weight != nil {
		cr.BlkioWeight = *b.Weight
	}
	if err := c.Set(config); err != nil {
		return fmt.Errorf("update container %q: %w", id, err)
	}
	return nil
}

// checkUpdateAgainstPolicy refuses an update that would raise a limit above
// the agent policy (memory bytes, pids, cpus as quota/period).
func checkUpdateAgainstPolicy(res *specs.LinuxResources, mem, pids int64, cpus float64) error {
	var errs []error
	if mem > 0 && res.Memory != nil && res.Memory.Limit != nil && (*res.Memory.Limit <= 0 || *res.Memory.Limit > mem) {
		errs = append(errs, fmt.Errorf("memory limit %d is above the agent policy's resources.memory (%d)", *res.Memory.Limit, mem))
	}
	if pids > 0 && res.Pids != nil && res.Pids.Limit != nil && (*res.Pids.Limit <= 0 || *res.Pids.Limit > pids) {
		errs = append(errs, fmt.Errorf("pids limit %d is above the agent policy's resources.pids (%d)", *res.Pids.Limit, pids))
	}
	if cpus > 0 && res.CPU != nil && res.CPU.Quota != nil {
		period := uint64(100000)
		if res.CPU.Period != nil && *res.CPU.Period > 0 {
			period = *res.CPU.Period
		}
		if q := *res.CPU.Quota; q <= 0 || float64(q)/float64(period) > cpus+1e-9 {
			errs = append(errs, fmt.Errorf("cpu quota %d/%d is above the agent policy's resources.cpus (%g)", q, period, cpus))
		}
	}
	return errors.Join(errs...)
}
