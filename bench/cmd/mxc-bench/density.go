//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/reaper"
)

// Extras are the figures that are not one timed command: the density batch
// and mxc's resident memory per container.
type Extras struct {
	Density []*DensityResult
	Memory  []*MemoryResult
}

// DensityResult is one runtime's density batches.
type DensityResult struct {
	Runtime    string
	Containers int
	Policy     bool            // mxc ran the containers under the agent policy
	Batches    []time.Duration // wall time of each batch
	PeakMiB    []float64       // peak memory the batch added, per batch
	// Phases are the wall times of the batch's three steps (start, exec,
	// delete), per batch.
	Phases [][3]time.Duration
}

// PhaseMedian is the median of phase i over the batches.
func (d *DensityResult) PhaseMedian(i int) time.Duration {
	var s []time.Duration
	for _, p := range d.Phases {
		s = append(s, p[i])
	}
	return Summarize(s).Median
}

// Median batch time and the largest peak.
func (d *DensityResult) Median() time.Duration { return Summarize(d.Batches).Median }

func (d *DensityResult) Peak() float64 {
	m := 0.0
	for _, p := range d.PeakMiB {
		m = max(m, p)
	}
	return m
}

// densityWorkers is how many runtime commands a batch runs at once: enough
// to keep both cores of the reference machine busy while one command waits.
const densityWorkers = 4

// Density starts n containers per runtime (mxc under the agent policy, the
// others without a policy), runs /bin/true in each, and deletes them, runs
// times per runtime with the runtimes interleaved. It reports the wall time
// of each batch and the peak memory it added (MemTotal - MemAvailable,
// sampled every 20 ms, above the level before the batch).
func (b *Bench) Density(ctx context.Context, n, runs int) ([]*DensityResult, error) {
	fmt.Fprintf(os.Stderr, "%-22s n=%d containers, %d batches ...", "density", n, runs)
	start := time.Now()
	res := map[string]*DensityResult{}
	var out []*DensityResult
	for _, rt := range b.Runtimes {
		d := &DensityResult{Runtime: rt.Name, Containers: n, Policy: rt.IsMxc()}
		res[rt.Name] = d
		out = append(out, d)
	}
	for i := 0; i < runs; i++ {
		for j := range b.Runtimes {
			rt := b.Runtimes[(i+j)%len(b.Runtimes)]
			d, phases, peak, err := b.densityBatch(ctx, rt, n, i)
			reaper.All()
			if err != nil {
				fmt.Fprintln(os.Stderr, " failed")
				return nil, fmt.Errorf("%s: %w", rt.Name, err)
			}
			res[rt.Name].Batches = append(res[rt.Name].Batches, d)
			res[rt.Name].Phases = append(res[rt.Name].Phases, phases)
			res[rt.Name].PeakMiB = append(res[rt.Name].PeakMiB, peak)
		}
	}
	var parts []string
	for _, d := range out {
		parts = append(parts, fmt.Sprintf("%s %.1f s %.0f MiB", d.Runtime, d.Median().Seconds(), d.Peak()))
	}
	fmt.Fprintf(os.Stderr, " %s (%s)\n", strings.Join(parts, ", "), time.Since(start).Round(time.Second))
	return out, nil
}

func (b *Bench) densityBatch(ctx context.Context, rt *Runtime, n, iter int) (time.Duration, [3]time.Duration, float64, error) {
	var phases [3]time.Duration
	bundle, err := b.Bundle("/bin/sleep", "100000")
	if rt.IsMxc() {
		bundle, err = b.AgentBundle("/bin/sleep", "100000")
	}
	if err != nil {
		return 0, phases, 0, err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = containerID(rt, fmt.Sprintf("density%d", iter), i)
	}
	// Let the previous batch's memory settle before taking the baseline.
	time.Sleep(500 * time.Millisecond)
	base := usedMiB()
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if u := usedMiB(); u > peak {
				peak = u
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	t0 := time.Now()
	steps := []func(string) error{
		func(id string) error { _, err := rt.Exec(ctx, "run", "--detach", "--bundle", bundle, id); return err },
		func(id string) error { _, err := rt.Exec(ctx, "exec", id, "/bin/true"); return err },
		func(id string) error { _, err := rt.Exec(ctx, "delete", "--force", id); return err },
	}
	var batchErr error
	for i, step := range steps {
		ts := time.Now()
		if err := parallel(ctx, ids, step); err != nil {
			batchErr = err
			break
		}
		phases[i] = time.Since(ts)
	}
	d := time.Since(t0)
	close(stop)
	<-sampled
	if batchErr != nil {
		for _, id := range ids {
			_, _ = rt.Exec(context.Background(), "delete", "--force", id)
		}
		return 0, phases, 0, batchErr
	}
	if left := rt.leftovers(); len(left) > 0 {
		return 0, phases, 0, fmt.Errorf("containers left behind: %v", left)
	}
	return d, phases, peak - base, nil
}

// parallel runs fn for every id, densityWorkers at a time.
func parallel(ctx context.Context, ids []string, fn func(string) error) error {
	work := make(chan string)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for w := 0; w < densityWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if err := fn(id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// usedMiB is MemTotal - MemAvailable.
func usedMiB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total, avail float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "MemTotal":
			total = kb
		case "MemAvailable":
			avail = kb
		}
	}
	return (total - avail) / 1024
}

// MemoryResult is the resident memory of mxc's helpers per container with
// Containers containers running under the agent policy.
type MemoryResult struct {
	Containers int
	// Per container, averaged: by helper kind and in total.
	RSS, PSS, Anon map[string]float64 // MiB
	Helpers        []string           // what was found, for the record
}

// Memory runs, for each count, that many mxc containers under the agent
// policy, each with an exec done (so that its exec server runs), and
// reads the helpers' memory from /proc/<pid>/smaps_rollup: the exec
// server, the policy monitor and the egress gate (one process may be
// several of them). PSS splits pages shared between processes (the
// mxc-runtime binary's) among them.
func (b *Bench) Memory(ctx context.Context, counts []int) ([]*MemoryResult, error) {
	var rt *Runtime
	for _, r := range b.Runtimes {
		if r.Name == "mxc" {
			rt = r
		}
	}
	if rt == nil {
		return nil, nil
	}
	fmt.Fprintf(os.Stderr, "%-22s containers %v ...", "memory", counts)
	bundle, err := b.AgentBundle("/bin/sleep", "100000")
	if err != nil {
		return nil, err
	}
	var out []*MemoryResult
	for ci, n := range counts {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = containerID(rt, fmt.Sprintf("mem%d", ci), i)
		}
		cleanup := func() {
			for _, id := range ids {
				_, _ = rt.Exec(context.Background(), "delete", "--force", id)
			}
			reaper.All()
		}
		err := parallel(ctx, ids, func(id string) error {
			if _, err := rt.Exec(ctx, "run", "--detach", "--bundle", bundle, id); err != nil {
				return err
			}
			if _, err := rt.Exec(ctx, "exec", id, "/bin/true"); err != nil {
				return err
			}
			// One name lookup, refused by the egress gate: the policy
			// monitor starts as a C stage and becomes the Go monitor on
			// the first query (docs/design/enforcement.md), and an agent
			// resolves names. This is the larger of its two sizes.
			if _, err := rt.Exec(ctx, "exec", id, "/bin/sh", "-c", "busybox nslookup -timeout=2 mxc-bench.invalid 127.0.0.1 >/dev/null 2>&1; true"); err != nil {
				return err
			}
			_, err := rt.Exec(ctx, "exec-server", "start", id)
			return err
		})
		if err != nil {
			cleanup()
			return nil, err
		}
		// Steady state: the helpers have settled, their collector is on
		// (see package helperheap).
		time.Sleep(helperheap.Settle + time.Second)
		m := &MemoryResult{Containers: n, RSS: map[string]float64{}, PSS: map[string]float64{}, Anon: map[string]float64{}}
		for _, id := range ids {
			for kind, pid := range helperPids(rt.Root, id) {
				if dir := os.Getenv("BENCH_MEMORY_SMAPS"); dir != "" {
					// For finding out which mappings hold the memory.
					if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid)); err == nil {
						name := fmt.Sprintf("%s-%s.smaps", id, strings.ReplaceAll(kind, " ", "_"))
						_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
					}
				}
				r, p, a, err := smapsRollup(pid)
				if err != nil {
					cleanup()
					return nil, fmt.Errorf("%s %s (%d): %w", id, kind, pid, err)
				}
				for _, k := range []string{kind, "total"} {
					m.RSS[k] += r / float64(n)
					m.PSS[k] += p / float64(n)
					m.Anon[k] += a / float64(n)
				}
				if id == ids[0] {
					m.Helpers = append(m.Helpers, kind)
				}
			}
		}
		sort.Strings(m.Helpers)
		cleanup()
		out = append(out, m)
	}
	fmt.Fprintf(os.Stderr, " done\n")
	return out, nil
}

// helperPids finds a container's mxc helpers: the exec server (exec/info),
// the policy monitor (mxc.json monitorPid) and the egress gate (gate.pid of
// the container's network namespace); a process that is two of them is
// listed once, under both names joined.
func helperPids(root, id string) map[string]int {
	dir := filepath.Join(root, id)
	byPid := map[int][]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "exec", "info")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "server "); ok {
				if pid, _ := strconv.Atoi(strings.Fields(v)[0]); pid > 0 {
					byPid[pid] = append(byPid[pid], "exec server")
				}
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "mxc.json")); err == nil {
		if v, ok := jsonInt(string(b), `"monitorPid":`); ok {
			byPid[v] = append(byPid[v], "policy monitor")
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "egress.json")); err == nil {
		key, _ := jsonString(string(b), `"key":`)
		run, _ := jsonString(string(b), `"runDir":`)
		if key != "" && run != "" {
			if g, err := os.ReadFile(filepath.Join(run, "ns-"+key, "gate.pid")); err == nil {
				if f := strings.Fields(string(g)); len(f) > 0 {
					if pid, _ := strconv.Atoi(f[0]); pid > 0 {
						byPid[pid] = append(byPid[pid], "egress gate")
					}
				}
			}
		}
	}
	out := map[string]int{}
	for pid, kinds := range byPid {
		out[strings.Join(kinds, " + ")] = pid
	}
	return out
}

func jsonInt(s, key string) (int, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return 0, false
	}
	v := strings.TrimLeft(s[i+len(key):], " ")
	end := strings.IndexAny(v, ",}\n")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[:end]))
	return n, err == nil && n > 0
}

func jsonString(s, key string) (string, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return "", false
	}
	v := strings.TrimLeft(s[i+len(key):], " ")
	if !strings.HasPrefix(v, `"`) {
		return "", false
	}
	end := strings.IndexByte(v[1:], '"')
	if end < 0 {
		return "", false
	}
	return v[1 : 1+end], true
}

// smapsRollup returns a process's Rss, Pss and Anonymous in MiB.
func smapsRollup(pid int) (rss, pss, anon float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "Rss":
			rss = kb / 1024
		case "Pss":
			pss = kb / 1024
		case "Anonymous":
			anon = kb / 1024
		}
	}
	return rss, pss, anon, nil
}

// Text renders the extras for the terminal (and the doc).
func (e *Extras) Text() string {
	var s strings.Builder
	if len(e.Density) > 0 {
		d0 := e.Density[0]
		fmt.Fprintf(&s, "\ndensity: %d containers started (run -d), one exec each, deleted; %d at a time; median of %d batches\n\n", d0.Containers, densityWorkers, len(d0.Batches))
		fmt.Fprintf(&s, "| runtime | policy | batch s (median) | start s | exec s | delete s | per container ms | peak memory added MiB (max) |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, d := range e.Density {
			pol := "none"
			if d.Policy {
				pol = "coding-agent"
			}
			fmt.Fprintf(&s, "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.1f | %.0f |\n", d.Runtime, pol, d.Median().Seconds(),
				d.PhaseMedian(0).Seconds(), d.PhaseMedian(1).Seconds(), d.PhaseMedian(2).Seconds(),
				ms(d.Median())/float64(d.Containers), d.Peak())
		}
	}
	for _, m := range e.Memory {
		fmt.Fprintf(&s, "\nmxc helpers' resident memory per container, %d container(s) under the coding-agent policy (MiB, from /proc/<pid>/smaps_rollup)\n\n", m.Containers)
		fmt.Fprintf(&s, "| helper | RSS | PSS | anonymous |\n|---|---:|---:|---:|\n")
		keys := append(append([]string{}, m.Helpers...), "total")
		for _, k := range keys {
			fmt.Fprintf(&s, "| %s | %.2f | %.2f | %.2f |\n", k, m.RSS[k], m.PSS[k], m.Anon[k])
		}
	}
	return s.String()
}
