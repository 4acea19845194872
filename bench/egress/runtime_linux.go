package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/egress/lab"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/spec"
)

// What the egress filter costs a container, measured on a built
// mxc-runtime: `run` of a busybox `true` under the same agent policy
// without and with network rules (both have a monitor: the policy has a
// timeout), egress.Setup and Teardown on their own, and the resident
// memory of the helpers. mxc-runtime runs in the lab's host namespace, as
// in the runtime tests, so its gates reach the lab's resolver only.

var (
	only   string
	rtOpts struct {
		bin     string
		runs    int
		helpers int
	}
)

// The agent policy of the measurements; NET is its network section.
const benchPolicy = `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy",
"identity":{"agent":"bench"},"isolation":"process",
"filesystem":{"readonlyPaths":["/bin","/etc"],"readwritePaths":["/workspace","/tmp"],"deniedPaths":["/etc/shadow"]},
"network":NET,
"ui":{"disable":true},
"resources":{"cpus":1,"memory":"256Mi","pids":128},
"process":{"timeout":600000}}`

const (
	// No network rule: linux/egress is not involved.
	netNone = `{"egress":{"default":"allow"},"ingress":{"default":"allow","hostLoopback":"allow"}}`
	// An allowed name: the table and the gate.
	netRules = `{"egress":{"default":"deny","allow":[{"to":[{"host":"allowed.test"}],"ports":[{"protocol":"tcp","port":80}]}]}}`
)

func benchRuntime(l *lab.Lab) error {
	bin, err := filepath.Abs(rtOpts.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Printf("container measurements skipped: %s: %v (make build, or -runtime)\n", bin, err)
		return nil
	}
	work, err := os.MkdirTemp("", "mxc-bench-egress-rt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root, err := os.MkdirTemp("/run", "mxc-bench-egress-")
	if err != nil {
		return err
	}
	r := &rtBench{bin: bin, root: root, work: work, host: lab.NetNSPath(l.Host)}
	defer r.cleanup()
	node := fmt.Sprintf("dns:\n  upstreams: [\"%s:53\"]\nceiling:\n  allowEgressDefaultAllow: true\n  allowIngress: true\n  egressAllow:\n    - to: [{host: allowed.test}]\n", lab.UpstreamDNS)
	r.node = filepath.Join(work, "node.yaml")
	if err := os.WriteFile(r.node, []byte(node), 0o644); err != nil {
		return err
	}
	bundles := map[string]string{}
	for name, net := range map[string]string{"plain": "", "nonet": netNone, "egress": netRules} {
		dir := filepath.Join(work, "bundle-"+name)
		ann := ""
		if net != "" {
			ann = strings.Replace(benchPolicy, "NET", net, 1)
		}
		if err := makeBundle(bin, dir, ann, "true"); err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
		bundles[name] = dir
	}
	fmt.Printf("egress filter on containers: %s, medians of %d interleaved runs; load average %s\n", bin, rtOpts.runs, loadavg())
	names := []string{"plain", "nonet", "egress"}
	all := map[string][]time.Duration{}
	n := 0
	for round := -1; round < rtOpts.runs; round++ {
		for _, name := range names {
			n++
			d, err := r.timed("run", "--bundle", bundles[name], "b"+strconv.Itoa(n))
			if err != nil {
				return err
			}
			if round >= 0 {
				all[name] = append(all[name], d)
			}
		}
	}
	plain, nonet, eg := medianOf(all["plain"]), medianOf(all["nonet"]), medianOf(all["egress"])
	fmt.Println("run (busybox `true`: created, started, waited for, deleted)")
	fmt.Printf("  %-52s %s\n", "no policy", ms(plain))
	fmt.Printf("  %-52s %s\n", "agent policy, no network rule", ms(nonet))
	fmt.Printf("  %-52s %s  (egress filter: %+.1f ms)\n", "agent policy with egress rules (table + DNS gate)", ms(eg), float64(eg-nonet)/1e6)

	if err := benchSetup(l); err != nil {
		return err
	}
	return r.memory(bundles["egress"], bundles["nonet"])
}

type rtBench struct {
	bin, root, work, node, host string
}

func (r *rtBench) command(args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=" + r.host, "--", r.bin, "--root", r.root, "--config", r.node}, args...)...)
	cmd.Env = append(os.Environ(), "MXC_CONFIG=")
	return cmd
}

func (r *rtBench) timed(args ...string) (time.Duration, error) {
	cmd := r.command(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("mxc-runtime %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return d, nil
}

func (r *rtBench) cleanup() {
	ents, _ := os.ReadDir(r.root)
	for _, e := range ents {
		if e.IsDir() && e.Name()[0] != '.' {
			_ = r.command("delete", "--force", e.Name()).Run()
		}
	}
	_ = os.RemoveAll(r.root)
	reapAll()
}

func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func medianOf(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%7.2f ms", float64(d.Microseconds())/1000) }

// benchSetup times egress.Setup and Teardown on fresh namespaces, with a
// gate process of its own (the standalone path: sandbox, tests).
func benchSetup(l *lab.Lab) error {
	dir, err := os.MkdirTemp("", "mxc-bench-setup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var setups, teardowns []time.Duration
	for i := -1; i < rtOpts.runs; i++ {
		ns := fmt.Sprintf("%s-st%d", l.Prefix, i+1)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add: %v: %s", err, out)
		}
		cfg := egress.Config{
			ContainerID: fmt.Sprintf("st%d", i+1), StateDir: filepath.Join(dir, fmt.Sprint(i+1)),
			NetNSPath: lab.NetNSPath(ns), AuditPath: filepath.Join(dir, fmt.Sprint(i+1), "audit.jsonl"),
			Policy: &spec.Effective{Policy: spec.AgentPolicy{Mode: spec.ModeEnforce, Network: &spec.Network{
				Egress: &spec.Egress{Default: spec.Deny, Allow: []spec.Rule{{To: []spec.Peer{{Host: "allowed.test"}}}}},
			}}},
			DNS: &spec.DNSConfig{Upstreams: []string{lab.UpstreamDNS + ":53"}},
			Exe: l.Bin, RunDir: filepath.Join(dir, "run"), HostNetNSPath: lab.NetNSPath(l.Host),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		err := egress.Setup(ctx, cfg)
		t1 := time.Now()
		cancel()
		var terr error
		if err == nil {
			terr = egress.Teardown(cfg)
		}
		t2 := time.Now()
		_ = exec.Command("ip", "netns", "del", ns).Run()
		if err != nil || terr != nil {
			return fmt.Errorf("setup %v, teardown %v", err, terr)
		}
		if i >= 0 {
			setups, teardowns = append(setups, t1.Sub(t0)), append(teardowns, t2.Sub(t1))
		}
	}
	reapAll()
	fmt.Println("egress.Setup / Teardown on a fresh namespace (gate as a process of its own)")
	fmt.Printf("  %-52s %s\n", "Setup (table, gate started, DNS served)", ms(medianOf(setups)))
	fmt.Printf("  %-52s %s\n", "Teardown (gate stopped, state removed)", ms(medianOf(teardowns)))
	return nil
}

// memory starts rtOpts.helpers containers of each bundle (sleeping) and
// reports their helpers' resident memory from /proc.
func (r *rtBench) memory(egressBundle, nonetBundle string) error {
	k := rtOpts.helpers
	fmt.Printf("helpers' memory, %d containers each (from /proc/<pid>/status and smaps_rollup)\n", k)
	for _, c := range []struct{ label, bundle string }{
		{"monitor holding the gate, idle (egress rules)", egressBundle},
		{"monitor only, idle (no network rule)", nonetBundle},
	} {
		sleepy := filepath.Join(r.work, "sleepy-"+filepath.Base(c.bundle))
		if err := os.MkdirAll(sleepy, 0o755); err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(c.bundle, "config.json"))
		if err != nil {
			return err
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		s["process"].(map[string]any)["args"] = []string{"sleep", "300"}
		s["root"].(map[string]any)["path"] = filepath.Join(c.bundle, "rootfs")
		var ids []string
		var pids []int
		for i := 0; i < k; i++ {
			lx := s["linux"].(map[string]any)
			// A flat path: no parent cgroup left behind.
			lx["cgroupsPath"] = fmt.Sprintf("/mxc-bench-egress-%s-%d-%d", filepath.Base(c.bundle), os.Getpid(), i)
			out, _ := json.Marshal(s)
			if err := os.WriteFile(filepath.Join(sleepy, "config.json"), out, 0o644); err != nil {
				return err
			}
			id := fmt.Sprintf("mem-%s-%d", filepath.Base(c.bundle), i)
			cmd := r.command("run", "--detach", "--bundle", sleepy, id)
			devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
			err := cmd.Run()
			devnull.Close()
			if err != nil {
				return fmt.Errorf("run --detach %s: %w", id, err)
			}
			ids = append(ids, id)
			var rec struct {
				MonitorPid int `json:"monitorPid"`
			}
			b, _ := os.ReadFile(filepath.Join(r.root, id, "mxc.json"))
			_ = json.Unmarshal(b, &rec)
			pids = append(pids, rec.MonitorPid)
		}
		time.Sleep(time.Second)
		var rss, anon, pss, pssAnon float64
		for _, p := range pids {
			st := procKB(fmt.Sprintf("/proc/%d/status", p))
			sm := procKB(fmt.Sprintf("/proc/%d/smaps_rollup", p))
			rss += st["VmRSS"]
			anon += st["RssAnon"]
			pss += sm["Pss"]
			pssAnon += sm["Pss_Anon"]
		}
		f := float64(len(pids)) * 1024
		fmt.Printf("  %-42s per helper: RSS %5.1f MiB (anonymous %4.1f), PSS %4.1f MiB (anonymous %4.1f)\n",
			c.label, rss/f, anon/f, pss/f, pssAnon/f)
		for _, id := range ids {
			_ = r.command("delete", "--force", id).Run()
		}
		reapAll()
	}
	fmt.Println("  (RSS counts the mxc-runtime binary's pages, shared by every mxc process; PSS")
	fmt.Println("   shares them out among the processes that map them. An idle monitor is its C")
	fmt.Println("   stage; the first DNS query, OOM kill or the timeout's approach makes it the Go")
	fmt.Println("   monitor: `make bench`'s helper table, whose containers resolve a name)")
	return nil
}

// procKB reads the "Key: N kB" lines of a /proc file.
func procKB(path string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 2 && fs[1] == "kB" {
			n, _ := strconv.ParseFloat(fs[0], 64)
			out[k] = n
		}
	}
	return out
}

// makeBundle is a busybox bundle running args with the annotation (if any)
// as io.mxc.policy.
func makeBundle(bin, dir, policy string, args ...string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "workspace"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("needs busybox-static: %w", err)
	}
	bb := filepath.Join(rootfs, "bin", "busybox")
	if err := os.WriteFile(bb, data, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "true", "sleep"} {
		if err := os.Link(bb, filepath.Join(rootfs, "bin", a)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644); err != nil {
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
	proc["args"] = args
	s["root"].(map[string]any)["readonly"] = false
	s["linux"].(map[string]any)["cgroupsPath"] = fmt.Sprintf("/mxc-bench-egress-%s-%d", filepath.Base(dir), os.Getpid())
	if policy != "" {
		s["annotations"] = map[string]string{"io.mxc.policy": policy}
	}
	raw, _ = json.MarshalIndent(s, "", " ")
	return os.WriteFile(p, raw, 0o644)
}
