//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"mxc.dev/mxc/internal/reaper"
)

// CPU attribution of `run /bin/true`: `perf record -g` over n runs of an
// unstripped build of the subject runtime, then inclusive CPU time per
// function, separately for the runtime process and the container's init
// (the re-exec of the same binary, named runc:[2:INIT] by nsexec). perf
// cannot name the init's frames (it runs from a sealed copy of the binary),
// so unknown frames are resolved against the binary's symbol table, which
// is exact for a static non-PIE Go binary.

// symtab maps addresses to function names (from `go tool nm`).
type symtab struct {
	addr []uint64
	name []string
	segs []elf.ProgHeader // PT_LOAD segments: file offset -> address
}

func loadSymtab(bin string) (*symtab, error) {
	out, err := exec.Command("go", "tool", "nm", "-n", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool nm %s: %w", bin, err)
	}
	st := &symtab{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(strings.TrimSpace(sc.Text()), " ", 3)
		if len(f) != 3 || (f[1] != "T" && f[1] != "t") {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		st.addr = append(st.addr, a)
		st.name = append(st.name, f[2])
	}
	if len(st.addr) == 0 {
		return nil, fmt.Errorf("%s: no symbols (built with -s?)", bin)
	}
	f, err := elf.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			st.segs = append(st.segs, p.ProgHeader)
		}
	}
	return st, nil
}

// lookupUnknown resolves a frame perf could not name. perf script prints
// such frames as offsets into the mapped file (the sealed copy of the
// binary, which it does not recognise): map the offset to an address
// through the load segments.
func (s *symtab) lookupUnknown(off uint64) string {
	for _, p := range s.segs {
		if off >= p.Off && off < p.Off+p.Filesz {
			return s.lookup(off - p.Off + p.Vaddr)
		}
	}
	return ""
}

func (s *symtab) lookup(a uint64) string {
	i := sort.Search(len(s.addr), func(i int) bool { return s.addr[i] > a }) - 1
	if i < 0 {
		return ""
	}
	return s.name[i]
}

// cpuSample is one perf sample: the process name and its call chain
// (leaf first), resolved to function names.
type cpuSample struct {
	comm   string
	frames []string
}

// parsePerfScript reads `perf script -F comm,ip,sym` output: a header line
// per sample (the comm), then one indented "addr sym" line per frame.
func parsePerfScript(out []byte, st *symtab) []cpuSample {
	var samples []cpuSample
	var cur *cpuSample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			samples = append(samples, cpuSample{comm: strings.TrimSpace(line)})
			cur = &samples[len(samples)-1]
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := ""
		if len(f) > 1 && f[1] != "[unknown]" {
			name = f[1]
			if i := strings.LastIndex(name, "+0x"); i > 0 {
				name = name[:i]
			}
		} else if a, err := strconv.ParseUint(f[0], 16, 64); err == nil && st != nil {
			name = st.lookupUnknown(a)
		}
		if name != "" {
			cur.frames = append(cur.frames, name)
		}
	}
	return samples
}

// inclusive counts, per comm, the samples each function is on the stack of
// (once per sample).
func inclusive(samples []cpuSample) (total map[string]int, byFunc map[string]map[string]int) {
	total = map[string]int{}
	byFunc = map[string]map[string]int{}
	for _, s := range samples {
		total[s.comm]++
		m := byFunc[s.comm]
		if m == nil {
			m = map[string]int{}
			byFunc[s.comm] = m
		}
		seen := map[string]bool{}
		for _, fn := range s.frames {
			if !seen[fn] {
				seen[fn] = true
				m[fn]++
			}
		}
	}
	return total, byFunc
}

// CPUProfile records n runs of the subject runtime (which must be an
// unstripped build) and prints per-run CPU time of the top functions.
func (b *Bench) CPUProfile(ctx context.Context, n, top int) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("needs perf (apt-get install linux-perf): %w", err)
	}
	rt := b.Runtimes[0]
	st, err := loadSymtab(rt.Bin)
	if err != nil {
		return err
	}
	bundle, err := b.Bundle("/bin/true")
	if b.Opts.CPUPolicy {
		bundle, err = b.AgentBundle("/bin/true")
	}
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ { // warm-up
		if _, err := rt.Exec(ctx, "run", "--bundle", bundle, containerID(rt, "cpuwarm", i)); err != nil {
			return err
		}
	}
	// One perf session over a shell loop of n runs.
	script := filepath.Join(b.Dir, "runs.sh")
	var sb strings.Builder
	sb.WriteString("#!/bin/sh\nset -e\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "%q --root %q run --bundle %q %s </dev/null >/dev/null\n", rt.Bin, rt.Root, bundle, containerID(rt, "cpu", i))
	}
	if err := os.WriteFile(script, []byte(sb.String()), 0o755); err != nil {
		return err
	}
	data := filepath.Join(b.Dir, "perf.data")
	const freq = 20000
	pctx, cancel := context.WithTimeout(ctx, time.Duration(n)*cmdTimeout)
	defer cancel()
	rec := exec.CommandContext(pctx, perf, "record", "-q", "-g", "-F", strconv.Itoa(freq), "-o", data, "--", "/bin/sh", script)
	rec.Env = append(os.Environ(), "MXC_CONFIG=")
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Errorf("perf record: %w: %s", err, bytes.TrimSpace(out))
	}
	reaper.All()
	if b.Opts.CPUData != "" {
		if err := copyFile(data, b.Opts.CPUData); err != nil {
			return fmt.Errorf("keep perf.data: %w", err)
		}
	}
	out, err := exec.CommandContext(ctx, perf, "script", "-i", data, "-F", "comm,ip,sym").Output()
	if err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	total, byFunc := inclusive(parsePerfScript(out, st))
	perRun := func(samples int) float64 { return float64(samples) / freq * 1000 / float64(n) }

	var md strings.Builder
	fmt.Fprintf(&md, "CPU per `run` (ms, %d runs, %d Hz sampling) by process:\n\n| process | CPU ms |\n|---|---:|\n", n, freq)
	comms := make([]string, 0, len(total))
	for c := range total {
		comms = append(comms, c)
	}
	sort.Slice(comms, func(i, j int) bool { return total[comms[i]] > total[comms[j]] })
	for _, c := range comms {
		if perRun(total[c]) >= 0.1 {
			fmt.Fprintf(&md, "| %s | %.1f |\n", c, perRun(total[c]))
		}
	}
	for _, c := range []string{commName(rt.Bin), "runc:[2:INIT]", "3"} {
		m := byFunc[c]
		if len(m) == 0 {
			continue
		}
		type kv struct {
			fn string
			n  int
		}
		var fns []kv
		for fn, k := range m {
			fns = append(fns, kv{fn, k})
		}
		sort.Slice(fns, func(i, j int) bool {
			if fns[i].n != fns[j].n {
				return fns[i].n > fns[j].n
			}
			return fns[i].fn < fns[j].fn
		})
		fmt.Fprintf(&md, "\nInclusive CPU in `%s` (top %d, ms per run):\n\n| function | ms |\n|---|---:|\n", c, top)
		for i, f := range fns {
			if i == top {
				break
			}
			fmt.Fprintf(&md, "| `%s` | %.2f |\n", f.fn, perRun(f.n))
		}
	}
	fmt.Println()
	fmt.Print(md.String())
	return nil
}

// cpuTop is how many functions per process CPUProfile lists.
const cpuTop = 400

// copyFile copies src to dst (perf.data leaves the scratch dir, which
// Close removes).
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o600)
}
