//go:build linux

// Command enforce benchmarks what enforcement costs (issue 4, item 8):
//
//   - `mxc-runtime sandbox -- /bin/true` against bubblewrap with equivalent
//     isolation (read-only host, one writable directory, own mount and
//     network namespaces, capabilities dropped);
//   - `mxc-runtime run` of a busybox container running `true`, with a full
//     agent policy against the same container without one.
//
// Runs are interleaved (a, b, a, b, ...) so that machine noise hits both
// sides alike; it prints medians over -runs runs and the ratios. It needs
// root, bin/mxc-runtime (make build), bwrap and busybox-static.
//
//	go run ./bench/enforce -runs 30
package main

import (
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
)

var (
	runs    = flag.Int("runs", 30, "runs per measurement (medians are reported)")
	binFlag = flag.String("bin", "bin/mxc-runtime", "mxc-runtime binary")
	bwrap   = flag.String("bwrap", "bwrap", "bubblewrap binary")
	busybox = flag.String("busybox", "/bin/busybox", "static busybox for the container rootfs")
)

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
	if err := benchSandbox(bin, work); err != nil {
		return err
	}
	fmt.Println()
	return benchRun(bin, work)
}

func timeCmd(name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MXC_CONFIG=")
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
func interleave(names []string, cmds map[string][]string) (map[string]time.Duration, error) {
	all := map[string][]time.Duration{}
	for round := -1; round < *runs; round++ {
		for _, n := range names {
			d, err := timeCmd(cmds[n][0], cmds[n][1:]...)
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
	cmds := map[string][]string{
		// bubblewrap: read-only host, the workspace writable, /dev, own
		// mount and network namespaces, every capability dropped.
		"bwrap": {bw, "--ro-bind", "/", "/", "--bind", ws, ws, "--dev-bind", "/dev", "/dev",
			"--unshare-net", "--cap-drop", "ALL", "--", "/bin/true"},
		// mxc: the same, plus Landlock, the agent seccomp profile and
		// no_new_privs (bubblewrap sets no_new_privs too).
		"mxc sandbox": {bin, "sandbox", "--policy", policy, "--", "/bin/true"},
	}
	med, err := interleave([]string{"bwrap", "mxc sandbox"}, cmds)
	if err != nil {
		return err
	}
	fmt.Println("sandbox -- /bin/true")
	fmt.Printf("  bwrap (ro /, rw dir, netns, caps dropped)  %s\n", ms(med["bwrap"]))
	fmt.Printf("  mxc-runtime sandbox (same + Landlock, seccomp) %s\n", ms(med["mxc sandbox"]))
	fmt.Printf("  ratio sandbox/bwrap                         %7.2fx  (target <= 1.00x)\n", float64(med["mxc sandbox"])/float64(med["bwrap"]))
	return nil
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

const (
	denyAll = `{"egress":{"default":"deny"}}`
	// No network rule: the egress filter (linux/egress) is not involved.
	noRules = `{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}`
)

// benchNode lets a policy have no network rules.
const benchNode = "ceiling:\n  allowEgressDefaultAllow: true\n  allowIngress: true\n"

func benchRun(bin, work string) error {
	root, err := os.MkdirTemp("/run", "mxc-bench-")
	if err != nil {
		return err
	}
	defer func() {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() && e.Name()[0] != '.' {
				_ = exec.Command(bin, "--root", root, "delete", "--force", e.Name()).Run()
			}
		}
		os.RemoveAll(root)
		reap()
	}()
	node := filepath.Join(work, "node.yaml")
	if err := os.WriteFile(node, []byte(benchNode), 0o644); err != nil {
		return err
	}
	bundles := map[string]string{}
	for name, ann := range map[string]map[string]string{
		"plain":         nil,
		"process":       {"io.mxc.policy": fmt.Sprintf(fullPolicy, "process", denyAll)},
		"session":       {"io.mxc.policy": fmt.Sprintf(fullPolicy, "session", denyAll)},
		"process-nonet": {"io.mxc.policy": fmt.Sprintf(fullPolicy, "process", noRules)},
		"session-nonet": {"io.mxc.policy": fmt.Sprintf(fullPolicy, "session", noRules)},
	} {
		dir := filepath.Join(work, "bundle-"+name)
		if err := makeBundle(bin, dir, ann); err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
		bundles[name] = dir
	}
	n := 0
	cmds := map[string][]string{}
	names := []string{"plain", "process-nonet", "session-nonet", "process", "session"}
	// Each run needs a fresh id; rebuild the command lines every round.
	all := map[string][]time.Duration{}
	for round := -1; round < *runs; round++ {
		for _, name := range names {
			n++
			cmds[name] = []string{bin, "--root", root, "--config", node, "run", "--bundle", bundles[name], "bench-" + strconv.Itoa(n)}
			d, err := timeCmd(cmds[name][0], cmds[name][1:]...)
			if err != nil {
				return err
			}
			if round >= 0 {
				all[name] = append(all[name], d)
			}
		}
		reap()
	}
	plain := median(all["plain"])
	fmt.Println("run (busybox `true`, created, started, waited for and deleted)")
	fmt.Printf("  %-45s %s\n", "no policy", ms(plain))
	for _, row := range []struct{ name, label string }{
		{"process-nonet", "agent policy, no network rule, process tier"},
		{"session-nonet", "agent policy, no network rule, session tier"},
		{"process", "full agent policy, process tier"},
		{"session", "full agent policy, session tier"},
	} {
		m := median(all[row.name])
		fmt.Printf("  %-45s %s  %+6.1f%%\n", row.label, ms(m), 100*(float64(m)/float64(plain)-1))
	}
	fmt.Println("  (agent policy: Landlock paths, a masked path, seccomp, caps, cgroup limits, ui off,")
	fmt.Println("   timeout monitor; full adds egress default deny: nftables + the DNS gate. Target <= +15%)")
	return monitorRSS(bin, root, node, bundles["process-nonet"])
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
