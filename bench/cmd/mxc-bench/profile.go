//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"mxc.dev/mxc/internal/reaper"
)

// The profile splits one `run /bin/true` into phases, from kernel events
// recorded with `perf trace` (tracepoints, in-kernel buffering: far less
// overhead than ptrace). The phase boundaries are events every
// libcontainer runtime (mxc, runc) goes through:
//
//	exec of the runtime                  start
//	exec of the init (re-exec of self)   parent set up, spawned init
//	first fork by the init               parent applied cgroups and sent the bootstrap data (nsexec waits for it)
//	exit of nsexec's stage 0             namespaces made
//	first mount by the container process init's Go runtime started, config read
//	pivot_root                           rootfs mounts done
//	exec of /bin/true                    masked paths, caps, sync with parent, exec fifo
//	exit of /bin/true
//	last exit (the runtime)              wait, destroy cgroups and state
//
// A runtime without an init re-exec (crun) gets the total only.
var perfEvents = []string{
	"-e", "mkdirat,write,mount,pivot_root,unlinkat,fsopen",
	"-e", "sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit",
}

type phase struct{ key, title string }

var phases = []phase{
	{"setup", "runtime start-up → init exec: Go start-up, CLI, spec, state dir and lock, init binary clone, fork+exec"},
	{"setup.pre", "… of which: start-up → first fsopen (Go start-up, CLI, spec, lock, cgroup discovery, state dir)"},
	{"setup.clone", "… of which: first fsopen → init exec (exeseal: overlay mount sealing the binary, fork+exec)"},
	{"setup.monitor", "… of which, with a policy: start-up → policy monitor exec (CLI, spec, policy, session tier's id-mapped rootfs)"},
	{"reexec", "init binary clone inside the init (runc 1.1: memfd copy + second exec)"},
	{"cgroups", "init exec → nsexec fork: parent creates cgroups and moves the init in (init waits for bootstrap data)"},
	{"nsexec", "nsexec (C): clone + unshare of the namespaces, stage 0 exits"},
	{"initgo", "init Go start-up + config from parent → first mount"},
	{"mounts", "rootfs mounts (/proc, /dev, /sys, cgroup fs, devices) → pivot_root"},
	{"finish", "pivot_root → exec: masked/read-only paths, caps, rlimits, sync with parent, exec fifo"},
	{"finish.agent", "… of which: mxc's last step (agent-exec: Landlock, seccomp filters, exec), with a policy"},
	{"true", "/bin/true runs"},
	{"teardown", "/bin/true exit → runtime exit: wait, destroy cgroups, state"},
	{"total", "total under perf"},
}

// event is one parsed perf trace line.
type event struct {
	ts         float64 // ms from the first event
	dur        float64 // ms, syscalls only
	comm       string
	pid        int
	kind       string // exec, fork, exit, or a syscall name
	filename   string // exec
	parent     int    // fork
	child      int    // fork
	failedCall bool
}

var (
	perfLine  = regexp.MustCompile(`^\s*([\d.]+)\s+(?:\(\s*([\d.]*)\s*(?:ms)?\s*\):\s+)?(.*?)/(\d+)\s+(.*)$`)
	tpRe      = regexp.MustCompile(`^sched:sched_process_(exec|fork|exit)\((.*)\)`)
	scRe      = regexp.MustCompile(`^(\w+)\(.*\)\s+=\s+(-?\d+|0x[0-9a-f]+)`)
	fieldFile = regexp.MustCompile(`filename: "([^"]*)"`)
	fieldPP   = regexp.MustCompile(`parent_pid: (\d+)`)
	fieldCP   = regexp.MustCompile(`child_pid: (\d+)`)
)

// parsePerf reads `perf trace` output (perf 6.x format), sorted by time.
func parsePerf(out []byte) []event {
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ts, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		e := event{ts: ts, comm: m[3]}
		e.pid, _ = strconv.Atoi(m[4])
		rest := m[5]
		if tp := tpRe.FindStringSubmatch(rest); tp != nil {
			e.kind = tp[1]
			if f := fieldFile.FindStringSubmatch(tp[2]); f != nil {
				e.filename = f[1]
			}
			if f := fieldPP.FindStringSubmatch(tp[2]); f != nil {
				e.parent, _ = strconv.Atoi(f[1])
			}
			if f := fieldCP.FindStringSubmatch(tp[2]); f != nil {
				e.child, _ = strconv.Atoi(f[1])
			}
			evs = append(evs, e)
			continue
		}
		if s := scRe.FindStringSubmatch(rest); s != nil {
			e.kind = s[1]
			e.dur, _ = strconv.ParseFloat(m[2], 64)
			e.failedCall = strings.HasPrefix(s[2], "-")
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts < evs[j].ts })
	return evs
}

// breakdown is one traced run split into phases (ms); ok is false when a
// boundary is missing (other runtime architecture, or a lost event).
type breakdown struct {
	phase         map[string]float64
	ok            bool
	cgMkdirs      int     // mkdirat by the parent between init exec and nsexec fork
	cgWriteMS     float64 // time the parent spent in write() then
	cgSlowestMS   float64 // slowest single write() then
	parentMounts  int
	containerMnts int
}

// splitPhases finds the phase boundaries in one run's events. target is
// the container's program, parentComm the runtime's own process name.
func splitPhases(evs []event, target, parentComm string) breakdown {
	b := breakdown{phase: map[string]float64{}}
	if len(evs) == 0 {
		return b
	}
	var tEnd float64
	for _, e := range evs {
		if e.kind == "exit" {
			tEnd = e.ts
		}
	}
	start := evs[0]
	root := start.pid
	find := func(from float64, pred func(e event) bool) (event, bool) {
		for _, e := range evs {
			if e.ts >= from && pred(e) {
				return e, true
			}
		}
		return event{}, false
	}
	b.phase["total"] = tEnd - start.ts
	tgt, ok1 := find(0, func(e event) bool { return e.kind == "exec" && e.filename == target })
	// The init is the process nsexec names runc:[0:PARENT] (comm, 15
	// bytes) before its first fork; with a policy, mxc execs other helpers
	// (the policy monitor, the id-mapped rootfs' user namespace) before it.
	nsFork, ok3 := find(0, func(e event) bool { return e.kind == "fork" && strings.HasPrefix(e.comm, "runc:[0:PARENT") })
	if !ok1 || !ok3 || nsFork.ts > tgt.ts {
		return b
	}
	// runc 1.1 copies itself into a memfd inside the init and execs again:
	// the cgroup phase starts at the last exec of the init before it forks.
	var ini, last event
	ok2 := false
	for _, e := range evs {
		if e.kind == "exec" && e.pid == nsFork.pid && e.ts < nsFork.ts {
			if !ok2 {
				ini, ok2 = e, true
			}
			last = e
		}
	}
	if !ok2 {
		return b
	}
	nsDone, ok4 := find(nsFork.ts, func(e event) bool { return e.kind == "exit" && e.pid == ini.pid })
	mnt0, ok5 := find(nsDone.ts, func(e event) bool { return e.kind == "mount" && e.pid == tgt.pid })
	pivot, ok6 := find(mnt0.ts, func(e event) bool { return e.kind == "pivot_root" && e.pid == tgt.pid })
	tExit, ok7 := find(tgt.ts, func(e event) bool { return e.kind == "exit" && e.pid == tgt.pid })
	if !(ok3 && ok4 && ok5 && ok6 && ok7) {
		return b
	}
	b.ok = true
	b.phase["setup"] = ini.ts - start.ts
	if fs, ok := find(0, func(e event) bool { return e.kind == "fsopen" && e.comm == parentComm }); ok && fs.ts < ini.ts {
		b.phase["setup.pre"] = fs.ts - start.ts
		b.phase["setup.clone"] = ini.ts - fs.ts
	}
	if last.ts > ini.ts {
		b.phase["reexec"] = last.ts - ini.ts
	}
	b.phase["cgroups"] = nsFork.ts - last.ts
	b.phase["nsexec"] = nsDone.ts - nsFork.ts
	b.phase["initgo"] = mnt0.ts - nsDone.ts
	b.phase["mounts"] = pivot.ts - mnt0.ts
	b.phase["finish"] = tgt.ts - pivot.ts
	if ag, ok := find(pivot.ts, func(e event) bool { return e.kind == "exec" && e.pid == tgt.pid }); ok && ag.ts < tgt.ts {
		b.phase["finish.agent"] = tgt.ts - ag.ts
	}
	if mon, ok := find(0, func(e event) bool {
		return e.kind == "exec" && e.pid != root && e.pid != ini.pid && commName(e.filename) == parentComm
	}); ok && mon.ts < ini.ts {
		b.phase["setup.monitor"] = mon.ts - start.ts
	}
	b.phase["true"] = tExit.ts - tgt.ts
	b.phase["teardown"] = tEnd - tExit.ts
	for _, e := range evs {
		if e.comm != parentComm {
			continue
		}
		if e.ts >= last.ts && e.ts < nsFork.ts {
			switch e.kind {
			case "mkdirat":
				b.cgMkdirs++
			case "write":
				b.cgWriteMS += e.dur
				b.cgSlowestMS = max(b.cgSlowestMS, e.dur)
			}
		}
		if e.kind == "mount" {
			b.parentMounts++
		}
	}
	for _, e := range evs {
		if e.kind == "mount" && e.pid == tgt.pid {
			b.containerMnts++
		}
	}
	return b
}

// commName is what the kernel shows as a process's comm (15 bytes).
func commName(bin string) string {
	n := filepath.Base(bin)
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// Profile traces n runs per runtime and prints (and records) the medians.
func (b *Bench) Profile(ctx context.Context, n int) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("profile needs perf (apt-get install linux-perf): %w", err)
	}
	bundle, err := b.Bundle("/bin/true")
	if err != nil {
		return err
	}
	traces := filepath.Join(b.Dir, "traces")
	if err := os.MkdirAll(traces, 0o755); err != nil {
		return err
	}
	type acc struct {
		runs               []breakdown
		plain, version     []time.Duration
		mkdirs, mounts     []float64
		cgWrite, cgSlowest []float64
	}
	// One column per runtime, plus mxc with the coding-agent policy: the
	// difference between the two mxc columns is where the policy's cost
	// lands (issue 8, item 1).
	type column struct {
		name   string
		rt     *Runtime
		bundle string
		key    string // in container ids and trace file names
	}
	var cols []column
	for _, rt := range b.Runtimes {
		cols = append(cols, column{rt.Name, rt, bundle, "plain"})
	}
	for _, rt := range b.Runtimes {
		if rt.Name != "mxc" {
			continue
		}
		ab, err := b.AgentBundle("/bin/true")
		if err != nil {
			return err
		}
		cols = append(cols, column{"mxc, coding-agent policy", rt, ab, "agent"})
	}
	accs := map[string]*acc{}
	for _, c := range cols {
		accs[c.name] = &acc{}
	}
	total := n + 2 // two warm-ups
	for i := 0; i < total; i++ {
		for j := range cols {
			col := cols[(i+j)%len(cols)]
			rt, bundle, key := col.rt, col.bundle, col.key
			a := accs[col.name]
			if err := ctx.Err(); err != nil {
				return err
			}
			// Untraced: the binary's start-up floor and the plain run.
			vctx, cancel := context.WithTimeout(ctx, cmdTimeout)
			t0 := time.Now()
			verr := exec.CommandContext(vctx, rt.Bin, "--version").Run()
			dv := time.Since(t0)
			cancel()
			if verr != nil {
				return fmt.Errorf("%s --version: %w", rt.Name, verr)
			}
			dp, err := rt.Exec(ctx, "run", "--bundle", bundle, containerID(rt, key, i))
			if err != nil {
				return err
			}
			// Traced.
			id := containerID(rt, "prof-"+key, i)
			out := filepath.Join(traces, rt.Name+"-"+key+"-"+strconv.Itoa(i))
			pctx, cancel := context.WithTimeout(ctx, cmdTimeout)
			args := append([]string{"trace", "-f", "-o", out}, perfEvents...)
			args = append(args, "--", rt.Bin, "--root", rt.Root, "run", "--bundle", bundle, id)
			cmd := exec.CommandContext(pctx, perf, args...)
			cmd.Env = append(os.Environ(), "MXC_CONFIG=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			perr := cmd.Run()
			cancel()
			reaper.All()
			if perr != nil {
				return fmt.Errorf("perf trace %s: %w: %s", rt.Name, perr, bytes.TrimSpace(stderr.Bytes()))
			}
			data, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			_ = os.Remove(out)
			if i < 2 {
				continue
			}
			br := splitPhases(parsePerf(data), "/bin/true", commName(rt.Bin))
			a.runs = append(a.runs, br)
			a.plain = append(a.plain, dp)
			a.version = append(a.version, dv)
			if br.ok {
				a.mkdirs = append(a.mkdirs, float64(br.cgMkdirs))
				a.mounts = append(a.mounts, float64(br.containerMnts))
				a.cgWrite = append(a.cgWrite, br.cgWriteMS)
				a.cgSlowest = append(a.cgSlowest, br.cgSlowestMS)
			}
		}
	}
	for _, rt := range b.Runtimes {
		if left := rt.leftovers(); len(left) > 0 {
			return fmt.Errorf("%s left containers behind: %v", rt.Name, left)
		}
	}
	b.loadAvg[1] = loadAvg()

	// Table: phase rows, one column per runtime (median over the runs in
	// which that phase was found).
	var md strings.Builder
	md.WriteString("| phase (median ms) |")
	for _, c := range cols {
		md.WriteString(" " + c.name + " |")
	}
	md.WriteString("\n|---|")
	for range cols {
		md.WriteString("---:|")
	}
	md.WriteString("\n")
	row := func(title string, val func(a *acc) string) {
		md.WriteString("| " + title + " |")
		for _, c := range cols {
			md.WriteString(" " + val(accs[c.name]) + " |")
		}
		md.WriteString("\n")
	}
	medF := func(v []float64) string {
		if len(v) == 0 {
			return "n/a"
		}
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		m := s[len(s)/2]
		if len(s)%2 == 0 {
			m = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return fmt.Sprintf("%.1f", m)
	}
	for _, p := range phases {
		row(p.title, func(a *acc) string {
			var v []float64
			for _, r := range a.runs {
				if x, found := r.phase[p.key]; found && (r.ok || p.key == "total") {
					v = append(v, x)
				}
			}
			return medF(v)
		})
	}
	row("`run` untraced (same iterations)", func(a *acc) string { return fmtMS(Summarize(a.plain).Median) })
	row("`--version` untraced: the binary's start-up floor", func(a *acc) string { return fmtMS(Summarize(a.version).Median) })
	row("in the cgroups phase: mkdirat calls by the parent", func(a *acc) string { return medF(a.mkdirs) })
	row("in the cgroups phase: time in write() by the parent", func(a *acc) string { return medF(a.cgWrite) })
	row("in the cgroups phase: slowest single write()", func(a *acc) string { return medF(a.cgSlowest) })
	row("mount calls by the container's init", func(a *acc) string { return medF(a.mounts) })

	fmt.Println()
	fmt.Print(md.String())
	if b.Opts.Doc == "" {
		return nil
	}
	now := time.Now().UTC()
	var sec strings.Builder
	fmt.Fprintf(&sec, "### %s UTC: `run /bin/true`, %d traced runs per column\n\n", now.Format("2006-01-02 15:04"), n)
	fmt.Fprintf(&sec, "- machine: %s\n", hostMachine())
	fmt.Fprintf(&sec, "- load average at start / end: %s / %s\n", b.loadAvg[0], b.loadAvg[1])
	fmt.Fprintf(&sec, "- cgroup attach at start: %s\n", b.attach)
	fmt.Fprintf(&sec, "- page fault at start: %s\n", b.fault)
	for _, rt := range b.Runtimes {
		fmt.Fprintf(&sec, "- %s: `%s` %s\n", rt.Name, rt.Bin, rt.Version)
	}
	fmt.Fprintf(&sec, "- `perf trace %s` around each `run`; phase boundaries as in bench/cmd/mxc-bench/profile.go\n", strings.Join(perfEvents, " "))
	if len(cols) > len(b.Runtimes) {
		fmt.Fprintf(&sec, "- mxc, coding-agent policy: the same `run /bin/true` with %s in io.mxc.policy (session tier, Landlock, seccomp, egress allow list with its DNS gate, monitor); the other columns without any policy\n", b.Opts.AgentPolicy)
	}
	sec.WriteString("\n")
	sec.WriteString(md.String())
	sec.WriteString("\n")
	doc, err := readDoc(b.Opts.Doc)
	if err != nil {
		return err
	}
	if doc, err = insertAfter(doc, markProfile, sec.String()); err != nil {
		return err
	}
	if err := writeDoc(b.Opts.Doc, doc); err != nil {
		return err
	}
	fmt.Printf("\nrecorded in %s\n", b.Opts.Doc)
	return nil
}

// printPerfFile prints the phases found in one saved trace; the runtime's
// process name is taken from the trace's first exec.
func printPerfFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	evs := parsePerf(data)
	if len(evs) == 0 {
		return fmt.Errorf("%s: no events", path)
	}
	b := splitPhases(evs, "/bin/true", commName(evs[0].filename))
	fmt.Printf("%d events, all boundaries found: %v\n", len(evs), b.ok)
	for _, p := range phases {
		if v, ok := b.phase[p.key]; ok {
			fmt.Printf("%8.2f ms  %s\n", v, p.title)
		}
	}
	fmt.Printf("cgroups phase: %d mkdirat, %.2f ms in write() (slowest %.2f); %d mounts by the container init\n",
		b.cgMkdirs, b.cgWriteMS, b.cgSlowestMS, b.containerMnts)
	return nil
}
