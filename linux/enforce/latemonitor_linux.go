//go:build linux

package enforce

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/linux/cgwarm"
	"mxc.dev/mxc/linux/container"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/monitor"
	"mxc.dev/mxc/spec"
)

// A late monitor is started once the container's init exists, with
// everything it needs at once: its configuration in monitor.json, and,
// when it hosts the egress gate, the gate's sockets, bound by the runtime
// (egress.Config.Launch). It starts as the C stage of mxc-runtime
// (linux/execsrv/fastexec/premonitor.c), which holds the init's pidfd,
// the OOM notification, the timeout's clock and the gate's sockets, and
// execs the Go monitor (same pid) on the first of: a DNS query or logged
// packet, an OOM kill, the timeout's approach. A container that ends
// before any of those never starts a Go monitor, and create waits for
// nothing: see docs/design/enforcement.md, "The monitor's C stage".
//
// The early monitor (spawnMonitor) remains for what the C stage does not
// do: reading kernel audit records (create waits until the monitor
// listens, and its start then overlaps the init's), restarts
// (restartMonitor), and runtimes without the C stage.

// lateMonitor reports whether the container's monitor starts late, as the
// C stage. MXC_PRE_MONITOR=0 turns it off (the early Go monitor then, as
// before).
func (e *Engine) lateMonitor(st *state) bool {
	return e.opts.PreMonitor && !st.kaudit && os.Getenv("MXC_PRE_MONITOR") != "0"
}

// afterInitLate is afterInit with a late monitor: the egress filter is set
// up with the monitor as the gate's host (launched by egress.Setup once the
// sockets are bound and the table is in), or the monitor is started alone.
func (e *Engine) afterInitLate(ctx context.Context, pid int, eff *spec.Effective, cc *container.CreateContext, st *state, enforcesNet bool) error {
	mon := e.monitorConfig(pid, eff, cc, st)
	if enforcesNet {
		cfg, err := e.recordEgress(pid, eff, cc, st)
		if err != nil {
			return err
		}
		phasemark.Mark("late: egress recorded")
		ctx, cancel := context.WithTimeout(ctx, egressSetupTimeout)
		defer cancel()
		launched := false
		cfg.Launch = func(l *egress.GateLaunch) (int, error) {
			m := mon
			m.Gate = true
			pid, err := e.spawnLate(cc, m, l)
			launched = err == nil
			return pid, err
		}
		if err := egress.Setup(ctx, cfg); err != nil {
			return fmt.Errorf("egress filter: %w", err)
		}
		phasemark.Mark("late: egress set up")
		if launched {
			return nil
		}
	}
	if !mon.Needed() {
		return nil
	}
	_, err := e.spawnLate(cc, mon, nil)
	return err
}

// spawnLate writes the monitor's configuration and starts the monitor's
// C stage (which, to watch a pod's gate, execs the Go monitor at once).
// Its pid is recorded before it returns; on error nothing runs.
func (e *Engine) spawnLate(cc *container.CreateContext, m monitor.Config, gate *egress.GateLaunch) (pid int, err error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	cfgPath := filepath.Join(cc.StateDir, monitorFile)
	if err := writeFileAtomic(cfgPath, b); err != nil {
		return 0, fmt.Errorf("monitor config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(cc.StateDir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("monitor log: %w", err)
	}
	defer logf.Close()

	// One P and, once started, a small heap (see helperheap): the Go
	// monitor sleeps almost all the time.
	env := []string{"GOMAXPROCS=1", helperheap.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var files []*os.File
	if gate != nil {
		files = gate.ExtraFiles(0)
		env = append(env, gate.Adoption.Env())
	}
	// The commit pipe: the C stage does nothing until it reads the byte
	// written once the pid is recorded, and exits at EOF without it (this
	// runtime died before recording it, and no delete would find it).
	commitR, commitW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("policy monitor: %w", err)
	}
	defer commitW.Close()
	files = append(files, commitR)
	env = append(env,
		monitor.PreExeEnv+"="+e.helper(),
		monitor.PreCommitEnv+"="+strconv.Itoa(2+len(files)),
		monitor.PrePidEnv+"="+strconv.Itoa(m.InitPid),
		monitor.PreStartEnv+"="+strconv.FormatUint(m.InitStart, 10))
	if gate != nil && !gate.Adoption.Serves() {
		// Watching a pod's gate needs the Go monitor at once.
		env = append(env, monitor.PreEagerEnv+"=1")
	} else {
		if m.TimeoutMs > 0 {
			env = append(env, monitor.PreTimeoutEnv+"="+strconv.FormatUint(m.TimeoutMs, 10))
		}
		if m.OOM {
			if dir, v2 := oomDir(m.Cgroups); dir != "" {
				env = append(env, monitor.PreOOMEnv+"="+dir)
				if v2 {
					env = append(env, monitor.PreOOMV2Env+"=1")
				}
			}
		}
		if gate != nil {
			env = append(env, monitor.PreWakeEnv+"="+gate.Adoption.WakeFDs())
		}
		if v := os.Getenv(monitor.PreLeadEnv); v != "" {
			env = append(env, monitor.PreLeadEnv+"="+v)
		}
	}
	phasemark.Mark("late: monitor config written")
	cmd := exec.Command(e.opts.Exe, monitor.Verb, cfgPath)
	cmd.ExtraFiles = files
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	// Its own session: it is not a child anyone waits for (the runtime
	// usually exits first; the nearest subreaper, the shim, reaps it).
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = cmd.Start()
	commitR.Close()
	if err != nil {
		return 0, fmt.Errorf("start policy monitor: %w", err)
	}
	phasemark.Mark("late: monitor forked")
	pid = cmd.Process.Pid
	_ = cmd.Process.Release()
	cc.Record.MonitorPid = pid
	if err := container.SaveRecord(cc.StateDir, cc.Record); err != nil {
		return 0, err // the monitor exits at the commit pipe's EOF
	}
	phasemark.Mark("late: monitor started")
	if _, err := commitW.Write([]byte{1}); err != nil {
		return 0, fmt.Errorf("policy monitor %d: %w", pid, err)
	}
	return pid, nil
}

// oomDir is the memory cgroup whose OOM kills the monitor reports, and
// whether it is a cgroup v2 directory.
func oomDir(paths map[string]string) (string, bool) {
	if cgwarm.IsCgroup2("/sys/fs/cgroup") {
		return paths[""], true
	}
	return paths["memory"], false
}
