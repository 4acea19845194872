//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Markers in docs/benchmarks.md. Text between them is written by this
// program (newest first); everything else in the file is prose kept as is.
const (
	markHistory = "<!-- bench:history -->"
	markProfile = "<!-- bench:profile -->"
	markRuns    = "<!-- bench:runs -->"
)

// historyHeader is the dated table of every figure; its columns are fixed so
// rows from different runs line up (runtimes named otherwise show n/a).
const historyHeader = "| date (UTC) | mxc commit | runs | operation | mxc ms | runc ms | crun ms | mxc/runc | mxc/crun |\n" +
	"|---|---|---:|---|---:|---:|---:|---:|---:|\n"

// docSkeleton is used when the file does not exist yet.
const docSkeleton = "# Benchmarks\n\n## History\n\n" + markHistory + "\n" + historyHeader +
	"\n## Profiles\n\n" + markProfile + "\n\n## Runs\n\n" + markRuns + "\n"

// Machine describes the host a run was taken on.
type Machine struct {
	CPU, Kernel, OS, Cgroup string
	Cores                   int
	MemGiB                  float64
}

func hostMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: "?", OS: "?"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemGiB = float64(si.Totalram) * float64(si.Unit) / (1 << 30)
	}
	m.Cgroup = cgroupMode()
	return m
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// cgroupMode: "v2" (unified), "v1 hybrid" (v1 controllers plus a v2 mount
// at /sys/fs/cgroup/unified) or "v1".
func cgroupMode() string {
	var st syscall.Statfs_t
	const cgroup2Magic = 0x63677270
	if syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == cgroup2Magic {
		return "v2"
	}
	if syscall.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == cgroup2Magic {
		return "v1 hybrid (v2 at /sys/fs/cgroup/unified)"
	}
	return "v1"
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB; %s; kernel %s; cgroup %s", m.CPU, m.Cores, m.MemGiB, m.OS, m.Kernel, m.Cgroup)
}

// commitOf returns the subject's commit from its --version line, if any.
func (b *Bench) commitOf(rt *Runtime) string {
	if i := strings.LastIndex(rt.Version, "("); i >= 0 && strings.HasSuffix(rt.Version, ")") {
		return rt.Version[i+1 : len(rt.Version)-1]
	}
	return "?"
}

// Record adds this run to the doc: history rows and a section with the
// table, the machine, and the runtime versions.
func (b *Bench) Record(path string, res []*Result, t Table, extra *Extras) error {
	now := time.Now().UTC()
	m := hostMachine()
	runs := fmt.Sprintf("%d", b.Opts.N)
	if b.Opts.Label != "" {
		runs += " " + b.Opts.Label
	}
	var hist strings.Builder
	for _, r := range t.Rows {
		fig := func(name string) *Stat {
			for i, n := range t.Runtimes {
				if n == name {
					return r.Stats[i]
				}
			}
			return nil
		}
		cell := func(s *Stat) string {
			if s == nil {
				return "n/a"
			}
			return fmtMS(s.Median)
		}
		ratio := func(a, b *Stat) string {
			if a == nil || b == nil || b.Median == 0 {
				return "n/a"
			}
			return fmtRatio(float64(a.Median) / float64(b.Median))
		}
		mx, rc, cr := fig("mxc"), fig("runc"), fig("crun")
		fmt.Fprintf(&hist, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			now.Format("2006-01-02 15:04"), b.commitOf(b.Runtimes[0]), runs, r.Title,
			cell(mx), cell(rc), cell(cr), ratio(mx, rc), ratio(mx, cr))
	}
	if extra != nil {
		by := map[string]*DensityResult{}
		for _, d := range extra.Density {
			by[d.Runtime] = d
		}
		cell := func(name string, f func(*DensityResult) string) string {
			if d := by[name]; d != nil {
				return f(d)
			}
			return "n/a"
		}
		if len(extra.Density) > 0 {
			n := extra.Density[0].Containers
			batch := func(d *DensityResult) string { return fmtMS(d.Median()) }
			peak := func(d *DensityResult) string { return fmt.Sprintf("%.0f", d.Peak()) }
			mx, rc, cr := by["mxc"], by["runc"], by["crun"]
			ratio := func(a, b *DensityResult, f func(*DensityResult) float64) string {
				if a == nil || b == nil || f(b) == 0 {
					return "n/a"
				}
				return fmtRatio(f(a) / f(b))
			}
			med := func(d *DensityResult) float64 { return float64(d.Median()) }
			pk := func(d *DensityResult) float64 { return d.Peak() }
			fmt.Fprintf(&hist, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				now.Format("2006-01-02 15:04"), b.commitOf(b.Runtimes[0]), fmt.Sprintf("%d", len(extra.Density[0].Batches)),
				fmt.Sprintf("density: %d containers run -d + exec + delete, batch (mxc with coding-agent policy)", n),
				cell("mxc", batch), cell("runc", batch), cell("crun", batch), ratio(mx, rc, med), ratio(mx, cr, med))
			fmt.Fprintf(&hist, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				now.Format("2006-01-02 15:04"), b.commitOf(b.Runtimes[0]), fmt.Sprintf("%d", len(extra.Density[0].Batches)),
				fmt.Sprintf("density: %d containers, peak memory added, MiB (not ms)", n),
				cell("mxc", peak), cell("runc", peak), cell("crun", peak), ratio(mx, rc, pk), ratio(mx, cr, pk))
		}
		for _, m := range extra.Memory {
			fmt.Fprintf(&hist, "| %s | %s | 1 | %s | %s | n/a | n/a | n/a | n/a |\n",
				now.Format("2006-01-02 15:04"), b.commitOf(b.Runtimes[0]),
				fmt.Sprintf("mxc helpers per container, %d running (coding-agent): PSS / RSS MiB (not ms)", m.Containers),
				fmt.Sprintf("%.1f / %.1f", m.PSS["total"], m.RSS["total"]))
		}
	}
	var sec strings.Builder
	fmt.Fprintf(&sec, "### %s UTC, %d runs%s\n\n", now.Format("2006-01-02 15:04"), b.Opts.N, labelSuffix(b.Opts.Label))
	fmt.Fprintf(&sec, "- machine: %s\n", m)
	fmt.Fprintf(&sec, "- state roots and bundles on: %s\n", b.scratchDesc())
	fmt.Fprintf(&sec, "- load average at start / end: %s / %s\n", b.loadAvg[0], b.loadAvg[1])
	fmt.Fprintf(&sec, "- cgroup attach at start: %s\n", b.attach)
	fmt.Fprintf(&sec, "- page fault at start: %s\n", b.fault)
	for _, rt := range b.Runtimes {
		fmt.Fprintf(&sec, "- %s: `%s` %s\n", rt.Name, rt.Bin, rt.Version)
	}
	fmt.Fprintf(&sec, "- %d warm-up iterations, then %d timed; runtimes interleaved, order rotating each iteration; one busybox-static rootfs for all\n\n", b.Opts.Warmup, b.Opts.N)
	sec.WriteString(t.Markdown())
	sec.WriteString("\n")
	for _, r := range res {
		fmt.Fprintf(&sec, "- %s: %s\n", r.Scenario.Title, r.Scenario.What)
	}
	sec.WriteString("\n")
	if extra != nil {
		if t := extra.Text(); t != "" {
			sec.WriteString(strings.TrimPrefix(t, "\n"))
		}
	}

	doc, err := readDoc(path)
	if err != nil {
		return err
	}
	if doc, err = insertHistory(doc, hist.String()); err != nil {
		return err
	}
	if doc, err = insertAfter(doc, markRuns, sec.String()); err != nil {
		return err
	}
	return writeDoc(path, doc)
}

func labelSuffix(l string) string {
	if l == "" {
		return ""
	}
	return " (" + l + ")"
}

func readDoc(path string) (string, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return docSkeleton, nil
	}
	return string(data), err
}

// writeDoc replaces the file atomically.
func writeDoc(path, doc string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// insertAfter puts text on the lines right after the marker line (so the
// newest entry comes first).
func insertAfter(doc, marker, text string) (string, error) {
	i := strings.Index(doc, marker+"\n")
	if i < 0 {
		return "", fmt.Errorf("marker %s not found", marker)
	}
	at := i + len(marker) + 1
	return doc[:at] + "\n" + text + doc[at:], nil
}

// insertHistory puts rows right under the history table's header.
func insertHistory(doc, rows string) (string, error) {
	i := strings.Index(doc, markHistory+"\n")
	if i < 0 {
		return "", fmt.Errorf("marker %s not found", markHistory)
	}
	at := i + len(markHistory) + 1
	if !strings.HasPrefix(doc[at:], historyHeader) {
		// No table yet (or a hand-edited one): start it here.
		return doc[:at] + historyHeader + rows + doc[at:], nil
	}
	at += len(historyHeader)
	return doc[:at] + rows + doc[at:], nil
}
