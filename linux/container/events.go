//go:build linux

package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/types"
	"github.com/sirupsen/logrus"

	"mxc.dev/mxc/audit"
)

// Events implements `events`: with stats, one stats event and return;
// otherwise stats every interval and OOM notifications until the container
// stops, as runc prints them (JSON objects, one a line).
func (r *Runtime) Events(ctx context.Context, id string, interval time.Duration, statsOnce bool, w io.Writer) error {
	if interval <= 0 {
		return fmt.Errorf("--interval must be greater than 0 (got %s)", interval)
	}
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	st, err := c.Status()
	if err != nil {
		return err
	}
	if st == libcontainer.Stopped {
		return fmt.Errorf("container %q is not running", id)
	}
	enc := json.NewEncoder(w)
	emitStats := func() error {
		s, err := c.Stats()
		if err != nil {
			return err
		}
		return enc.Encode(&types.Event{Type: "stats", ID: id, Data: convertStats(s)})
	}
	if statsOnce {
		return emitStats()
	}
	oom, err := c.NotifyOOM()
	if err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-oom:
			if !ok {
				return nil // cgroup gone: the container stopped
			}
			_ = enc.Encode(&types.Event{Type: "oom", ID: id})
		case <-t.C:
			if err := emitStats(); err != nil {
				if st, _ := c.Status(); st == libcontainer.Stopped {
					return nil
				}
				logrus.Warnf("stats: %v", err)
			}
		}
	}
}

// AuditEvents implements `events --audit`: every audit event of the
// container, then new ones as they come, until it is deleted (or ctx ends).
func (r *Runtime) AuditEvents(ctx context.Context, id string, follow bool, w io.Writer) error {
	dir := r.stateDir(id)
	if _, err := LoadRecord(dir); err != nil {
		return err
	}
	if _, err := r.Load(id); err != nil {
		return err
	}
	path := filepath.Join(dir, audit.FileName)
	enc := json.NewEncoder(w)
	if !follow {
		evs, err := audit.ReadAll(path)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		return nil
	}
	gone := func() bool {
		_, err := libcontainer.Load(r.Root, id)
		return err != nil
	}
	return audit.Follow(ctx, path, 200*time.Millisecond, gone, nil, func(ev audit.Event) error { return enc.Encode(ev) })
}

func convertStats(ls *libcontainer.Stats) *types.Stats {
	cg := ls.CgroupStats
	if cg == nil {
		return nil
	}
	var s types.Stats
	s.Pids.Current, s.Pids.Limit = cg.PidsStats.Current, cg.PidsStats.Limit
	u := cg.CpuStats.CpuUsage
	s.CPU.Usage = types.CpuUsage{Kernel: u.UsageInKernelmode, User: u.UsageInUsermode, Total: u.TotalUsage,
		Percpu: u.PercpuUsage, PercpuKernel: u.PercpuUsageInKernelmode, PercpuUser: u.PercpuUsageInUsermode}
	th := cg.CpuStats.ThrottlingData
	s.CPU.Throttling = types.Throttling{Periods: th.Periods, ThrottledPeriods: th.ThrottledPeriods, ThrottledTime: th.ThrottledTime}
	s.CPUSet = types.CPUSet(cg.CPUSetStats)
	m := cg.MemoryStats
	s.Memory.Cache = m.Cache
	s.Memory.Usage = memEntry(m.Usage)
	s.Memory.Swap = memEntry(m.SwapUsage)
	s.Memory.Kernel = memEntry(m.KernelUsage)
	s.Memory.KernelTCP = memEntry(m.KernelTCPUsage)
	s.Memory.Raw = m.Stats
	for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
		s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, types.BlkioEntry(e))
	}
	for _, e := range cg.BlkioStats.IoServicedRecursive {
		s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, types.BlkioEntry(e))
	}
	s.Hugetlb = map[string]types.Hugetlb{}
	for k, v := range cg.HugetlbStats {
		s.Hugetlb[k] = types.Hugetlb{Usage: v.Usage, Max: v.MaxUsage, Failcnt: v.Failcnt}
	}
	s.NetworkInterfaces = ls.Interfaces
	return &s
}

func memEntry(c cgroups.MemoryData) types.MemoryEntry {
	return types.MemoryEntry{Limit: c.Limit, Usage: c.Usage, Max: c.MaxUsage, Failcnt: c.Failcnt}
}
