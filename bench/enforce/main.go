//go:build linux

// Command enforce benchmarks what enforcement costs (issue 4, item 8; issue
// 8, item 1):
//
//   - `mxc-runtime sandbox -- /bin/true` against bubblewrap with equivalent
//     isolation (read-only host, one writable directory, own mount and
//     network namespaces, capabilities dropped), through the C path (a
//     cached plan, no Go start-up) and through the Go path;
//   - `mxc-runtime run` of a busybox container running `true`, with agent
//     policies of growing scope against the same container without one,
//     the agent's last step in C (and, for comparison, in Go);
//   - `mxc-runtime run` with examples/policies/coding-agent.yaml against
//     crun without any policy.
//
// Runs are interleaved (a, b, a, b, ...) so that machine noise hits every
// row alike; it prints medians over -runs runs and the ratios. It needs
// root, bin/mxc-runtime (make build), bwrap, crun and busybox-static.
//
//	go run ./bench/enforce -runs 30
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/sandbox"
	"mxc.dev/mxc/spec"
)

var (
	runs        = flag.Int("runs", 30, "runs per measurement (medians are reported)")
	binFlag     = flag.String("bin", "bin/mxc-runtime", "mxc-runtime binary")
	bwrap       = flag.String("bwrap", "bwrap", "bubblewrap binary")
	crun        = flag.String("crun", "crun", "crun binary (empty: no crun row)")
	busybox     = flag.String("busybox", "/bin/busybox", "static busybox for the container rootfs")
	agentPolicy = flag.String("agent-policy", "examples/policies/coding-agent.yaml", "the coding-agent policy (issue 8 row)")
	onlyRows    = flag.String("rows", "", "comma-separated run rows to time (plain is always timed; the sandbox table is left out): "+
		"files, files-go, process-nonet, process-nonet-go, session-nonet, process, session, coding-agent, crun")
)

// command is one timed command line and its extra environment.
type command struct {
	args []string
	env  []string
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/enforce:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root")
	}
	bin, err := filepath.Abs(*binFlag)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", bin, err)
	}
	// Detached helpers (monitors, egress gates) re-parent to us: reap them.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	work, err := os.MkdirTemp("", "mxc-bench-enforce-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Printf("mxc enforcement benchmark: medians of %d interleaved runs\n\n", *runs)
	if *onlyRows == "" {
		if err := benchSandbox(bin, work); err != nil {
			return err
		}
		fmt.Println()
	}
	return benchRun(bin, work)
}

func timeCmd(c command) (time.Duration, error) {
	name, args := c.args[0], c.args[1:]
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "MXC_CONFIG="), c.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%7.2f ms", float64(d.Microseconds())/1000) }

// interleave runs each named command once per round, for *runs rounds
// (after one warm-up round), and returns the medians.
func interleave(names []string, cmds map[string]command) (map[string]time.Duration, error) {
	all := map[string][]time.Duration{}
	for round := -1; round < *runs; round++ {
		for _, n := range names {
			d, err := timeCmd(cmds[n])
			if err != nil {
				return nil, err
			}
			if round >= 0 {
				all[n] = append(all[n], d)
			}
		}
		reap()
	}
	out := map[string]time.Duration{}
	for n, ds := range all {
		out[n] = median(ds)
	}
	return out, nil
}

func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func benchSandbox(bin, work string) error {
	bw, err := exec.LookPath(*bwrap)
	if err != nil {
		return fmt.Errorf("bubblewrap: %w", err)
	}
	ws := filepath.Join(work, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	policy := filepath.Join(work, "sandbox.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\nfilesystem:\n  readonlyPaths: [/]\n  readwritePaths: ["+ws+"]\n"), 0o644); err != nil {
		return err
	}
	sbArgs := []string{bin, "sandbox", "--policy", policy, "--", "/bin/true"}
	cmds := map[string]command{
		// bubblewrap: read-only host, the workspace writable, /dev, own
		// mount and network namespaces, every capability dropped.
		"bwrap": {args: []string{bw, "--ro-bind", "/", "/", "--bind", ws, ws, "--dev-bind", "/dev", "/dev",
			"--unshare-net", "--cap-drop", "ALL", "--", "/bin/true"}},
		// mxc: the same, plus Landlock, the agent seccomp profile and
		// no_new_privs (bubblewrap sets no_new_privs too); the C path
		// (required: a fallback fails the run) and the Go path.
		"mxc sandbox":    {args: sbArgs, env: []string{"MXC_SANDBOX_FAST=require"}},
		"mxc sandbox Go": {args: sbArgs, env: []string{"MXC_SANDBOX_FAST=0"}},
	}
	// The first sandbox of a policy compiles and caches its plan.
	if _, err := timeCmd(command{args: sbArgs}); err != nil {
		return err
	}
	defer removePlan(bin, policy)
	med, err := interleave([]string{"bwrap", "mxc sandbox", "mxc sandbox Go"}, cmds)
	if err != nil {
		return err
	}
	fmt.Println("sandbox -- /bin/true")
	fmt.Printf("  %-50s %s\n", "bwrap (ro /, rw dir, netns, caps dropped)", ms(med["bwrap"]))
	fmt.Printf("  %-50s %s  %5.2fx\n", "mxc-runtime sandbox, C path (cached plan)", ms(med["mxc sandbox"]), float64(med["mxc sandbox"])/float64(med["bwrap"]))
	fmt.Printf("  %-50s %s  %5.2fx\n", "mxc-runtime sandbox, Go path (MXC_SANDBOX_FAST=0)", ms(med["mxc sandbox Go"]), float64(med["mxc sandbox Go"])/float64(med["bwrap"]))
	fmt.Println("  (mxc: the same isolation plus Landlock, the agent seccomp profile; target sandbox/bwrap <= 1.00x)")
	return nil
}

// removePlan removes the plan the benchmark's sandboxes cached.
func removePlan(bin, policy string) {
	data, err := os.ReadFile(policy)
	if err != nil {
		return
	}
	id, err := sandbox.IdentityOf(bin)
	if err != nil {
		return
	}
	k := sandbox.PlanKeyWith(data, nil, id)
	_ = os.Remove(filepath.Join(sandbox.PlanDir, hex.EncodeToString(k[:])))
}

// makeRootfs fills dir with busybox and its applets as hard links.
func makeRootfs(dir string) error {
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "workspace"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(*busybox)
	if err != nil {
		return err
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := os.WriteFile(bb, data, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "true", "cat", "echo", "sleep"} {
		if err := os.Link(bb, filepath.Join(dir, "bin", a)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644)
}

func makeBundle(bin, dir string, annotations map[string]string) error {
	return makeBundleVersion(bin, dir, annotations, "")
}

// makeBundleVersion is makeBundle with the spec's ociVersion set (crun
// 1.8.1 refuses versions newer than 1.0.2).
func makeBundleVersion(bin, dir string, annotations map[string]string, ociVersion string) error {
	if err := makeRootfs(filepath.Join(dir, "rootfs")); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("spec: %v: %s", err, out)
	}
	p := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	proc := s["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"true"}
	s["root"].(map[string]any)["readonly"] = false
	if annotations != nil {
		s["annotations"] = annotations
	}
	if ociVersion != "" {
		s["ociVersion"] = ociVersion
	}
	raw, _ = json.MarshalIndent(s, "", " ")
	return os.WriteFile(p, raw, 0o644)
}

const fullPolicy = `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy",
"identity":{"agent":"bench"},"isolation":"%s",
"filesystem":{"readonlyPaths":["/bin","/etc"],"readwritePaths":["/workspace","/tmp"],"deniedPaths":["/etc/shadow"]},
"network":%s,
"ui":{"disable":true},
"resources":{"cpus":1,"memory":"256Mi","pids":128},
"process":{"timeout":600000}}`

// filesOnlyPolicy is an agent policy with nothing to watch (no limits, no
// timeout: no policy monitor) and no network rule: what remains is the
// spec edits, Landlock, seccomp and the capability bound.
const filesOnlyPolicy = `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy",
"identity":{"agent":"bench"},"isolation":"process",
"filesystem":{"readonlyPaths":["/bin","/etc"],"readwritePaths":["/workspace","/tmp"],"deniedPaths":["/etc/shadow"]},
"network":{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}},
"ui":{"disable":true}}`

const (
	denyAll = `{"egress":{"default":"deny"}}`
	// No network rule: the egress filter (linux/egress) is not involved.
	noRules = `{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}`
)

// benchNode lets a policy have no network rules.
const benchNode = "ceiling:\n  allowEgressDefaultAllow: true\n  allowIngress: true\n"

// runRow is one row of the run table.
type runRow struct {
	name, label string
	bundle      string
	crun        bool     // run by crun instead of mxc-runtime
	noNode      bool     // no node config (the coding-agent policy needs none)
	env         []string // MXC_AGENT_EXEC: which last step
}

func benchRun(bin, work string) error {
	root, err := os.MkdirTemp("/run", "mxc-bench-")
	if err != nil {
		return err
	}
	crunRoot := filepath.Join(root, ".crun")
	defer func() {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() && e.Name()[0] != '.' {
				_ = exec.Command(bin, "--root", root, "delete", "--force", e.Name()).Run()
			}
		}
		if *crun != "" {
			ents, _ = os.ReadDir(crunRoot)
			for _, e := range ents {
				if e.IsDir() {
					_ = exec.Command(*crun, "--root", crunRoot, "delete", "--force", e.Name()).Run()
				}
			}
		}
		os.RemoveAll(root)
		reap()
	}()
	node := filepath.Join(work, "node.yaml")
	if err := os.WriteFile(node, []byte(benchNode), 0o644); err != nil {
		return err
	}
	coding, err := codingAgentAnnotations()
	if err != nil {
		return err
	}
	bundles := map[string]string{}
	for name, ann := range map[string]map[string]string{
		"plain":         nil,
		"files":         {"io.mxc.policy": filesOnlyPolicy},
		"process":       {"io.mxc.policy": fmt.Sprintf(fullPolicy, "process", denyAll)},
		"session":       {"io.mxc.policy": fmt.Sprintf(fullPolicy, "session", denyAll)},
		"process-nonet": {"io.mxc.policy": fmt.Sprintf(fullPolicy, "process", noRules)},
		"session-nonet": {"io.mxc.policy": fmt.Sprintf(fullPolicy, "session", noRules)},
		"coding-agent":  coding,
	} {
		dir := filepath.Join(work, "bundle-"+name)
		if err := makeBundle(bin, dir, ann); err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
		bundles[name] = dir
	}
	cStep := []string{"MXC_AGENT_EXEC=require"} // a Go step would fail the run
	goStep := []string{"MXC_AGENT_EXEC=go"}
	rows := []runRow{
		{name: "plain", label: "no policy", bundle: "plain"},
		{name: "files", label: "agent policy: files, seccomp, caps (no monitor)", bundle: "files", env: cStep},
		{name: "files-go", label: "  the same, Go last step", bundle: "files", env: goStep},
		{name: "process-nonet", label: "+ limits, timeout monitor, process tier", bundle: "process-nonet", env: cStep},
		{name: "process-nonet-go", label: "  the same, Go last step", bundle: "process-nonet", env: goStep},
		{name: "session-nonet", label: "+ limits, timeout monitor, session tier", bundle: "session-nonet", env: cStep},
		{name: "process", label: "full, egress default deny, process tier", bundle: "process", env: cStep},
		{name: "session", label: "full, egress default deny, session tier", bundle: "session", env: cStep},
		{name: "coding-agent", label: "coding-agent.yaml (session, egress allow list)", bundle: "coding-agent", noNode: true, env: cStep},
	}
	if *crun != "" {
		cb := filepath.Join(work, "bundle-crun")
		if err := makeBundleVersion(bin, cb, nil, "1.0.2"); err != nil {
			return fmt.Errorf("crun bundle: %w", err)
		}
		bundles["crun"] = cb
		rows = append(rows, runRow{name: "crun", label: "crun, no policy", bundle: "crun", crun: true})
	}
	if *onlyRows != "" {
		keep := map[string]bool{"plain": true}
		for _, r := range strings.Split(*onlyRows, ",") {
			keep[strings.TrimSpace(r)] = true
		}
		var kept []runRow
		for _, row := range rows {
			if keep[row.name] {
				kept = append(kept, row)
				delete(keep, row.name)
			}
		}
		delete(keep, "plain")
		for r := range keep {
			return fmt.Errorf("-rows: no row %q", r)
		}
		rows = kept
	}
	n := 0
	// Each run needs a fresh id; rebuild the command lines every round.
	all := map[string][]time.Duration{}
	for round := -1; round < *runs; round++ {
		for _, row := range rows {
			n++
			id := "bench-" + strconv.Itoa(n)
			c := command{env: row.env}
			switch {
			case row.crun:
				c.args = []string{*crun, "--root", crunRoot, "run", "--bundle", bundles[row.bundle], id}
			case row.noNode:
				c.args = []string{bin, "--root", root, "run", "--bundle", bundles[row.bundle], id}
			default:
				c.args = []string{bin, "--root", root, "--config", node, "run", "--bundle", bundles[row.bundle], id}
			}
			d, err := timeCmd(c)
			if err != nil {
				return err
			}
			if round >= 0 {
				all[row.name] = append(all[row.name], d)
			}
		}
		reap()
	}
	plain := median(all["plain"])
	fmt.Println("run (busybox `true`, created, started, waited for and deleted)")
	for _, row := range rows {
		m := median(all[row.name])
		if row.name == "plain" {
			fmt.Printf("  %-50s %s\n", row.label, ms(m))
			continue
		}
		fmt.Printf("  %-50s %s  %+6.1f%%\n", row.label, ms(m), 100*(float64(m)/float64(plain)-1))
	}
	fmt.Println("  (percentages against `no policy`; target for a full agent policy <= +15%)")
	if len(all["crun"]) > 0 && len(all["coding-agent"]) > 0 {
		fmt.Printf("  %-50s %7.2fx  (issue 8 item 1: target <= 1.00x)\n", "coding-agent mxc / crun without policy",
			float64(median(all["coding-agent"]))/float64(median(all["crun"])))
	}
	if *onlyRows != "" {
		return nil
	}
	return monitorRSS(bin, root, node, bundles["process-nonet"])
}

// codingAgentAnnotations is the coding-agent example policy as its
// io.mxc.policy annotation.
func codingAgentAnnotations() (map[string]string, error) {
	data, err := os.ReadFile(*agentPolicy)
	if err != nil {
		return nil, fmt.Errorf("agent policy: %w", err)
	}
	p, _, err := spec.ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("agent policy %s: %w", *agentPolicy, err)
	}
	return spec.Annotations(p)
}

// monitorRSS reports the resident memory of one container's policy
// monitor (the helper that lives as long as the container).
func monitorRSS(bin, root, node, bundle string) error {
	id := "bench-rss"
	cmd := exec.Command(bin, "--root", root, "--config", node, "run", "--detach", "--bundle", bundle, id)
	// A long-running process keeps the monitor alive while we look.
	cfg := filepath.Join(bundle, "config.json")
	raw, _ := os.ReadFile(cfg)
	sleepy := strings.Replace(string(raw), `"true"`, `"sleep","30"`, 1)
	if err := os.WriteFile(cfg, []byte(sleepy), 0o644); err != nil {
		return err
	}
	defer os.WriteFile(cfg, raw, 0o644)
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run --detach: %w", err)
	}
	defer exec.Command(bin, "--root", root, "delete", "--force", id).Run()
	var rec struct {
		MonitorPid int `json:"monitorPid"`
	}
	b, err := os.ReadFile(filepath.Join(root, id, "mxc.json"))
	if err != nil {
		return err
	}
	_ = json.Unmarshal(b, &rec)
	time.Sleep(500 * time.Millisecond)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", rec.MonitorPid))
	if err != nil {
		return fmt.Errorf("monitor %d: %w", rec.MonitorPid, err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "RssAnon:") {
			fmt.Printf("  policy monitor %-8s %s\n", strings.TrimSuffix(strings.Fields(l)[0], ":"), strings.Join(strings.Fields(l)[1:], " "))
		}
	}
	return nil
}
