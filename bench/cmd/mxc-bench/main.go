//go:build linux

// Command mxc-bench times mxc-runtime against runc and crun, side by side in
// one run with one busybox bundle, and writes the figures to
// docs/benchmarks.md. bench/run.sh (make bench) builds and calls it.
//
// Each operation is a Scenario (scenarios.go). Per iteration every runtime
// runs once, in an order that rotates each iteration, so drift of the host
// (other load, CPU frequency, page cache) falls on all runtimes alike.
// Medians and p90 over -n iterations; the first runtime given is the subject
// whose ratios to the others are printed.
//
// The process is a child subreaper: container init processes outlive the
// runtime command that made them, and this machine's PID 1 does not reap.
// Everything made (containers, state roots, bundle) is removed at the end,
// also on error or SIGINT/SIGTERM.
//
// -profile N instead traces N runs of `run /bin/true` per libcontainer
// runtime with perf trace and reports where the time goes (profile.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"mxc.dev/mxc/internal/reaper"
)

type runtimeFlag []*Runtime

func (r *runtimeFlag) String() string { return fmt.Sprint(len(*r)) }
func (r *runtimeFlag) Set(v string) error {
	name, bin, ok := strings.Cut(v, "=")
	if !ok || name == "" || bin == "" {
		return fmt.Errorf("want name=path, got %q", v)
	}
	*r = append(*r, &Runtime{Name: name, Bin: bin})
	return nil
}

// Options are the command line.
type Options struct {
	N, Warmup int
	Only      *regexp.Regexp
	Doc       string // docs/benchmarks.md; "" writes nothing
	Label     string // e.g. "short": goes into the history rows
	Work      string // parent of the scratch dir
	// Tmpfs: the scratch dir is a private tmpfs when Work is not on one.
	Tmpfs     bool
	Profile   int    // >0: profile mode with that many traced runs
	ParsePerf string // print the phases of one saved `perf trace` output
	CPUProf   int    // >0: CPU attribution (perf record) over that many runs of the subject
	CPUPolicy bool   // CPUProf with the agent policy in the bundle
	CPUData   string // CPUProf keeps perf.data here (for perf report)
	// AgentPolicy is the policy mxc runs with in the policy rows.
	AgentPolicy string
	// Density is the number of containers of the density batch; DensityRuns
	// how many batches per runtime.
	Density, DensityRuns int
	Runtimes             runtimeFlag
	// Shim: the containerd of the shim row (empty Address: no shim row).
	Shim ShimOptions
}

func main() {
	var o Options
	var only string
	flag.IntVar(&o.N, "n", 30, "timed iterations per scenario and runtime")
	flag.IntVar(&o.Warmup, "warmup", 3, "untimed iterations first (page cache, dentries)")
	flag.StringVar(&only, "only", "", "run only scenarios whose key matches this regexp")
	flag.StringVar(&o.Doc, "doc", "", `markdown file to record the run in (empty or "-": print only)`)
	flag.StringVar(&o.Label, "label", "", "label of this run in the history (e.g. short)")
	flag.StringVar(&o.Work, "work", "/run", "where the scratch dir (bundle, state roots) is made; tmpfs preferred")
	flag.BoolVar(&o.Tmpfs, "tmpfs", true, "mount a private tmpfs on the scratch dir when -work is not on tmpfs: state roots and bundles live on tmpfs as under a normal host's /run")
	flag.IntVar(&o.Profile, "profile", 0, "profile `run /bin/true` with perf trace over this many runs instead of benchmarking")
	flag.IntVar(&o.CPUProf, "cpu-profile", 0, "attribute the CPU time of `run /bin/true` of the first runtime (an unstripped build) to functions, with perf record over this many runs")
	flag.BoolVar(&o.CPUPolicy, "cpu-profile-policy", false, "with -cpu-profile: the bundle carries the -agent-policy policy")
	flag.StringVar(&o.CPUData, "cpu-profile-data", "", "with -cpu-profile: keep perf.data at this path (for perf report -g caller)")
	flag.StringVar(&o.ParsePerf, "parse-perf", "", "print the phases found in a saved `perf trace -o` file of one `run /bin/true` (debugging the profile)")
	flag.StringVar(&o.AgentPolicy, "agent-policy", "examples/policies/coding-agent.yaml", "policy mxc runs with in the policy rows, the density batch and the memory figures")
	flag.IntVar(&o.Density, "density", 100, "containers in the density batch")
	flag.IntVar(&o.DensityRuns, "density-runs", 3, "density batches per runtime")
	flag.StringVar(&o.Shim.Ctr, "ctr", "ctr", "ctr binary for the shim row")
	flag.StringVar(&o.Shim.Address, "ctr-address", "", "containerd socket for the shim row (empty: no shim row)")
	flag.StringVar(&o.Shim.Namespace, "ctr-namespace", "mxc-bench", "containerd namespace for the shim row")
	flag.StringVar(&o.Shim.Image, "ctr-image", "docker.io/library/busybox-local:latest", "image (with /bin/true) imported into that containerd")
	flag.Var(&o.Runtimes, "runtime", "name=path of a runtime (repeatable); the first is the subject of the ratios; names mxc-* are further mxc builds (A/B), run with mxc's policy and environment")
	flag.Parse()
	if o.Doc == "-" { // as BENCH_DOC=- in bench/run.sh, not a file named "-"
		o.Doc = ""
	}
	if o.ParsePerf != "" {
		if err := printPerfFile(o.ParsePerf); err != nil {
			fmt.Fprintf(os.Stderr, "mxc-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(o.Runtimes) == 0 {
		fmt.Fprintln(os.Stderr, "mxc-bench: need at least one -runtime name=path")
		os.Exit(2)
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mxc-bench: -only: %v\n", err)
			os.Exit(2)
		}
		o.Only = re
	}
	if o.N < 1 {
		fmt.Fprintln(os.Stderr, "mxc-bench: -n must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "mxc-bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (runs real containers)")
	}
	if err := reaper.Subreaper(); err != nil {
		return err
	}
	stopReaper := reaper.Background(20 * time.Millisecond)
	defer stopReaper()
	b, err := NewBench(o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if o.Profile > 0 {
		return b.Profile(ctx, o.Profile)
	}
	if o.CPUProf > 0 {
		return b.CPUProfile(ctx, o.CPUProf, cpuTop)
	}
	res, err := b.RunAll(ctx)
	if err != nil {
		return err
	}
	var extra Extras
	if b.selected("density") {
		if extra.Density, err = b.Density(ctx, o.Density, o.DensityRuns); err != nil {
			return fmt.Errorf("density: %w", err)
		}
	}
	if b.selected("memory") {
		if extra.Memory, err = b.Memory(ctx, []int{1, 10}); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	table := FormatTable(res, b.Runtimes)
	fmt.Println()
	fmt.Print(table.Text())
	fmt.Print(extra.Text())
	if o.Doc != "" {
		if err := b.Record(o.Doc, res, table, &extra); err != nil {
			return fmt.Errorf("write %s: %w", o.Doc, err)
		}
		fmt.Printf("\nrecorded in %s\n", o.Doc)
	}
	return nil
}

// cmdTimeout bounds every runtime command, so a hung runtime cannot hang
// the benchmark.
const cmdTimeout = 30 * time.Second
