//go:build linux

// Command runner runs the OCI runtime-tools validation programs against
// several runtimes in one run (mxc-runtime and runc), program by program,
// interleaving the runtimes so both see the same host at the same time.
// It parses each program's TAP output, prints pass counts per runtime and
// every test point that the reference runtime passes and the runtime under
// test fails, and exits 1 when the runtime under test passes fewer programs
// or fewer test points than the reference.
//
// run.sh builds the validation programs and calls this; see its header.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"

	"mxc.dev/mxc/internal/reaper"
)

// runtimeFlag collects -runtime name=path flags in order; the first is the
// runtime under test, the second the reference it is compared with.
type runtimeFlag []runtimeSpec

type runtimeSpec struct{ Name, Bin string }

func (r *runtimeFlag) String() string { return fmt.Sprint(*r) }
func (r *runtimeFlag) Set(v string) error {
	name, bin, ok := strings.Cut(v, "=")
	if !ok || name == "" || bin == "" {
		return fmt.Errorf("want name=path, got %q", v)
	}
	*r = append(*r, runtimeSpec{name, bin})
	return nil
}

type config struct {
	suite    string // dir with the validation programs and runtimetest
	rootfs   string // rootfs-<arch>.tar.gz
	work     string // scratch dir: wrappers, state roots
	logs     string // per program and runtime: TAP, stderr, bundles while running
	timeout  time.Duration
	only     *regexp.Regexp
	skip     *regexp.Regexp
	runtimes runtimeFlag
	verbose  bool
}

func main() {
	var c config
	var only, skip string
	flag.StringVar(&c.suite, "suite", "", "directory holding the built validation programs and runtimetest")
	flag.StringVar(&c.rootfs, "rootfs", "", "rootfs tarball the programs unpack into every bundle")
	flag.StringVar(&c.work, "work", "", "scratch directory for wrappers and state roots")
	flag.StringVar(&c.logs, "logs", "", "directory for each program's TAP and stderr (default: work/logs)")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Minute, "timeout of one validation program against one runtime")
	flag.StringVar(&only, "only", "", "run only programs whose name matches this regexp")
	flag.StringVar(&skip, "skip", "", "skip programs whose name matches this regexp")
	flag.Var(&c.runtimes, "runtime", "name=path of a runtime; first: under test, second: reference (repeatable)")
	flag.BoolVar(&c.verbose, "v", false, "print every program's result as it finishes")
	flag.Parse()
	if c.suite == "" || c.rootfs == "" || c.work == "" || len(c.runtimes) != 2 {
		fmt.Fprintln(os.Stderr, "runner: need -suite, -rootfs, -work and two -runtime flags")
		os.Exit(2)
	}
	if c.logs == "" {
		c.logs = filepath.Join(c.work, "logs")
	}
	var err error
	if only != "" {
		if c.only, err = regexp.Compile(only); err != nil {
			fmt.Fprintf(os.Stderr, "runner: -only: %v\n", err)
			os.Exit(2)
		}
	}
	if skip != "" {
		if c.skip, err = regexp.Compile(skip); err != nil {
			fmt.Fprintf(os.Stderr, "runner: -skip: %v\n", err)
			os.Exit(2)
		}
	}
	code, err := run(c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runner: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// point is one TAP test point.
type point struct {
	OK   bool
	Skip bool
	Todo bool
	Desc string
}

// result of one program against one runtime.
type result struct {
	Program  string
	Runtime  string
	Points   []point
	Plan     int // -1: no plan line
	ExitCode int
	TimedOut bool
	Stderr   string
	LogDir   string
	Flaky    string // failed first (why), passed on retry
}

func (r *result) okCount() (ok int) {
	for _, p := range r.Points {
		if p.OK || p.Todo {
			ok++
		}
	}
	return ok
}

// Passed: exit 0, a plan that matches the points seen, no failing point,
// and at least one point (a program that plans 1..0 tested nothing; the
// hooks program does that when its check fails outside a test point).
func (r *result) Passed() bool {
	if r.TimedOut || r.ExitCode != 0 || r.Plan <= 0 || r.Plan != len(r.Points) {
		return false
	}
	return r.okCount() == len(r.Points)
}

// why says in a few words why a program did not pass.
func (r *result) why() string {
	switch {
	case r.TimedOut:
		return "timed out"
	case r.ExitCode != 0:
		return fmt.Sprintf("exit %d", r.ExitCode)
	case r.Plan < 0:
		return "no TAP plan"
	case r.Plan == 0 && len(r.Points) == 0:
		return "no test points (1..0)"
	case r.Plan != len(r.Points):
		return fmt.Sprintf("planned %d, ran %d", r.Plan, len(r.Points))
	}
	return fmt.Sprintf("%d not ok", len(r.Points)-r.okCount())
}

var (
	tapPoint = regexp.MustCompile(`^(not )?ok\b(?:\s+\d+)?\s*-?\s*([^#]*?)\s*(?:#\s*(\w+)\b.*)?$`)
	tapPlan  = regexp.MustCompile(`^1\.\.(\d+)`)
)

// parseTAP reads TAP 13 as the tap-go library writes it: points and the
// plan at column 0, YAML diagnostics indented (ignored here). Some programs
// print several TAP streams one after the other (a "TAP version" line
// starts each); the plan is then the sum of the streams' plans, and -1 if
// any stream has none.
func parseTAP(out []byte) (pts []point, plan int) {
	streams, planned, missing := 0, 0, false
	inStream, hasPlan := false, false
	endStream := func() {
		if inStream && !hasPlan {
			missing = true
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "TAP version") {
			endStream()
			streams++
			inStream, hasPlan = true, false
			continue
		}
		if m := tapPlan.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			planned += n
			hasPlan, inStream = true, true
			continue
		}
		m := tapPoint.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := strings.ToUpper(m[3])
		pts = append(pts, point{OK: m[1] == "", Skip: d == "SKIP", Todo: d == "TODO", Desc: m[2]})
		inStream = true
	}
	endStream()
	if missing || (streams == 0 && !hasPlan) {
		return pts, -1
	}
	return pts, planned
}

func run(c config) (int, error) {
	if err := reaper.Subreaper(); err != nil {
		return 0, err
	}
	programs, err := listPrograms(c)
	if err != nil {
		return 0, err
	}
	if len(programs) == 0 {
		return 0, errors.New("no validation program selected")
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return 0, err
	}
	// One state root and one wrapper per runtime: the validation programs
	// take a bare command in $RUNTIME, and neither runtime may see the
	// other's containers (or the host's).
	wrappers := make([]string, len(c.runtimes))
	roots := make([]string, len(c.runtimes))
	for i, rt := range c.runtimes {
		bin, err := exec.LookPath(rt.Bin)
		if err != nil {
			return 0, fmt.Errorf("runtime %s: %w", rt.Name, err)
		}
		c.runtimes[i].Bin = bin
		roots[i] = filepath.Join(c.work, "state-"+rt.Name)
		if err := os.MkdirAll(roots[i], 0o700); err != nil {
			return 0, err
		}
		wrappers[i] = filepath.Join(c.work, "runtime-"+rt.Name)
		script := fmt.Sprintf("#!/bin/sh\nexec %q --root %q \"$@\"\n", bin, roots[i])
		if err := os.WriteFile(wrappers[i], []byte(script), 0o755); err != nil {
			return 0, err
		}
	}
	defer func() {
		for i := range c.runtimes {
			cleanupState(c.runtimes[i].Bin, roots[i])
			_ = os.RemoveAll(roots[i])
		}
		reaper.KillAdopted()
	}()

	results := make(map[string][]*result) // program -> one per runtime
	start := time.Now()
	runAndClean := func(prog string, i int, logName string) *result {
		r := runOne(c, prog, logName, wrappers[i])
		cleanupState(c.runtimes[i].Bin, roots[i])
		cleanupHost(r.LogDir)
		if c.verbose {
			status := "pass"
			if !r.Passed() {
				status = "FAIL (" + r.why() + ")"
			}
			fmt.Printf("  %-36s %-11s %3d/%-3d points ok  %s\n", prog, logName, r.okCount(), len(r.Points), status)
		}
		return r
	}
	for _, prog := range programs {
		for i, rt := range c.runtimes {
			results[prog] = append(results[prog], runAndClean(prog, i, rt.Name))
		}
		// Some programs race with the container (killsig signals a shell
		// that may not have set its trap yet); under load they fail now
		// and then for any runtime, or end before their TAP plan. A run of
		// the runtime under test that does worse than the reference (fails
		// where it passed, or loses points it scored) gets one retry; a
		// retry that does as well is kept and reported as flaky.
		if t, ref := results[prog][0], results[prog][1]; worse(t, ref) {
			if r := runAndClean(prog, 0, c.runtimes[0].Name+"-retry"); !worse(r, ref) {
				r.Flaky, r.Runtime = t.why(), t.Runtime
				results[prog][0] = r
			}
		}
	}
	return report(c, programs, results, time.Since(start)), nil
}

// lostPoints are the points the reference passes and the runtime under
// test fails or never reached, matched by description.
func lostPoints(t, ref *result) []string {
	tOK := map[string]int{}
	for _, p := range t.Points {
		if p.OK || p.Todo {
			tOK[p.Desc]++
		}
	}
	var lost []string
	for _, p := range ref.Points {
		if !(p.OK || p.Todo) {
			continue
		}
		if tOK[p.Desc] > 0 {
			tOK[p.Desc]--
			continue
		}
		lost = append(lost, p.Desc)
	}
	return lost
}

// worse reports whether the runtime under test did worse than the
// reference in one program: what the report lists as a regression.
func worse(t, ref *result) bool {
	return (ref.Passed() && !t.Passed()) || len(lostPoints(t, ref)) > 0
}

func listPrograms(c config) ([]string, error) {
	ents, err := os.ReadDir(c.suite)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || n == "runtimetest" || n == "rootfs.tar.gz" || strings.Contains(n, ".") {
			continue
		}
		if c.only != nil && !c.only.MatchString(n) {
			continue
		}
		if c.skip != nil && c.skip.MatchString(n) {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// runOne runs one validation program against one runtime in a directory of
// its own: the programs unpack rootfs-<arch>.tar.gz and copy runtimetest
// from their working directory, and make bundles under $TMPDIR.
func runOne(c config, prog, rtName, wrapper string) *result {
	dir := filepath.Join(c.logs, rtName, prog)
	r := &result{Program: prog, Runtime: rtName, LogDir: dir, Plan: -1}
	_ = os.RemoveAll(dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		r.ExitCode, r.Stderr = -1, err.Error()
		return r
	}
	// The programs want rootfs-$GOARCH.tar.gz (tar follows a symlink) and
	// runtimetest, which they copy into the bundle as is: a symlink there
	// would dangle inside the container, so that one is a real copy.
	err := os.Symlink(c.rootfs, filepath.Join(dir, "rootfs-"+goarch()+".tar.gz"))
	if err == nil {
		err = copyFile(filepath.Join(c.suite, "runtimetest"), filepath.Join(dir, "runtimetest"), 0o755)
	}
	if err != nil {
		r.ExitCode, r.Stderr = -1, err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.suite, prog))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RUNTIME="+wrapper, "TMPDIR="+tmp)
	// Own process group, so a timeout kills the program and every runtime
	// command it has running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		r.TimedOut = true
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.ExitCode = ee.ExitCode()
	case err != nil:
		r.ExitCode = -1
		stderr.WriteString(err.Error())
	}
	reaper.All()
	_ = os.WriteFile(filepath.Join(dir, "tap.txt"), stdout.Bytes(), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "stderr.txt"), stderr.Bytes(), 0o644)
	r.Stderr = stderr.String()
	r.Points, r.Plan = parseTAP(stdout.Bytes())
	return r
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// goarch names the rootfs tarball the programs look for: they are built
// for the host, as this runner is.
func goarch() string { return runtime.GOARCH }

// cleanupState force-deletes every container left in a runtime's root
// (a failed or timed-out program does not clean up after itself).
func cleanupState(bin, root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--root", root, "delete", "--force", e.Name()).CombinedOutput()
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %s delete --force %s: %v: %s\n", filepath.Base(bin), e.Name(), err, bytes.TrimSpace(out))
		}
	}
	reaper.All()
}

// cleanupHost removes what the suite leaves on the host: mounts under the
// program's directory, its bundles, and the cgroups the cgroup programs
// name (rmdir only removes empty cgroups, so nothing live is touched).
func cleanupHost(dir string) {
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: umount %s: %v\n", m, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
	}
	// Relative cgroup paths land below the runtime's own cgroup in each
	// hierarchy, which is not the root everywhere (on this CI host the
	// memory hierarchy puts every process under /process_api/...).
	bases := map[string]bool{"/": true}
	own, _ := cgroups.ParseCgroupFile("/proc/self/cgroup")
	for _, p := range own {
		bases[p] = true
	}
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, ctrl := range ctrls {
		for base := range bases {
			for _, p := range []string{"cgrouptest", "testdir/cgrouptest/container", "testdir/cgrouptest", "testdir"} {
				_ = syscall.Rmdir(filepath.Join(ctrl, base, p))
			}
		}
	}
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Later mounts may sit on earlier ones: undo in reverse order.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// report prints per-runtime counts, then every program and point that the
// reference passes and the runtime under test does not; returns the exit
// code (1 when the runtime under test scores below the reference).
func report(c config, programs []string, results map[string][]*result, took time.Duration) int {
	test, ref := c.runtimes[0].Name, c.runtimes[1].Name
	var progPass, pointOK, pointAll [2]int
	type regression struct {
		prog   string
		why    string
		points []string
		stderr string
		logs   string
	}
	var regs []regression
	var bothFail []string
	var testOnly []string
	var flaky []string
	for _, prog := range programs {
		rs := results[prog]
		for i, r := range rs {
			if r.Passed() {
				progPass[i]++
			}
			pointOK[i] += r.okCount()
			pointAll[i] += len(r.Points)
		}
		t, rf := rs[0], rs[1]
		if t.Flaky != "" {
			flaky = append(flaky, fmt.Sprintf("%s (first run: %s)", prog, t.Flaky))
		}
		lost := lostPoints(t, rf)
		switch {
		case rf.Passed() && !t.Passed(), len(lost) > 0:
			regs = append(regs, regression{prog, t.why(), lost, firstLines(t.Stderr, 6), t.LogDir})
		case !rf.Passed() && !t.Passed():
			bothFail = append(bothFail, fmt.Sprintf("%s (%s: %s; %s: %s)", prog, test, t.why(), ref, rf.why()))
		case !rf.Passed() && t.Passed():
			testOnly = append(testOnly, fmt.Sprintf("%s (%s: %s)", prog, ref, rf.why()))
		}
	}
	n := len(programs)
	fmt.Println()
	if len(bothFail) > 0 {
		fmt.Printf("failing under both %s and %s (%d):\n", test, ref, len(bothFail))
		for _, s := range bothFail {
			fmt.Println("  " + s)
		}
	}
	if len(testOnly) > 0 {
		fmt.Printf("passing under %s only (%d):\n", test, len(testOnly))
		for _, s := range testOnly {
			fmt.Println("  " + s)
		}
	}
	if len(flaky) > 0 {
		fmt.Printf("%s did as well as %s on retry (%d):\n", test, ref, len(flaky))
		for _, s := range flaky {
			fmt.Println("  " + s)
		}
	}
	if len(regs) > 0 {
		fmt.Printf("%s fails where %s passes (%d):\n", test, ref, len(regs))
		for _, r := range regs {
			fmt.Printf("  %s: %s\n", r.prog, r.why)
			for i, p := range r.points {
				if i == 5 {
					fmt.Printf("    - ... and %d more\n", len(r.points)-i)
					break
				}
				fmt.Printf("    - %s\n", p)
			}
			if r.stderr != "" {
				fmt.Printf("    stderr: %s\n", strings.ReplaceAll(r.stderr, "\n", "\n            "))
			}
			fmt.Printf("    logs: %s\n", r.logs)
		}
	}
	fmt.Printf("runtime-tools test points: %s %d/%d ok, %s %d/%d ok\n", test, pointOK[0], pointAll[0], ref, pointOK[1], pointAll[1])
	fmt.Printf("runtime-tools validation: %s %d/%d passed, %s %d/%d passed (%s)\n", test, progPass[0], n, ref, progPass[1], n, took.Round(time.Second))
	if progPass[0] < progPass[1] || pointOK[0] < pointOK[1] {
		fmt.Printf("FAIL: %s scores below %s\n", test, ref)
		return 1
	}
	return 0
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
