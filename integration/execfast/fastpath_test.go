//go:build linux

package execfast_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/integration/harness"
)

var idSeq atomic.Int64

func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), idSeq.Add(1))
}

// plainContainer runs a busybox container without an agent policy, with its
// exec server started (plain containers get one only when asked).
func plainContainer(t *testing.T, edit func(*specs.Spec)) (*harness.Runtime, *harness.Bundle, string, serverStatus) {
	t.Helper()
	r := harness.NewRuntime(t)
	b := harness.NewBundle(t, "sleep", "600")
	b.Spec.Process.User.AdditionalGids = []uint32{10, 20}
	if edit != nil {
		edit(b.Spec)
	}
	b.Save(t)
	id := newID("plain")
	startDetached(t, r, b, id)
	return r, b, id, startServer(t, r, id)
}

// whatItHolds prints what a process holds and sees: the status fields the
// fast path must reproduce, namespaces, cgroups, environment, cwd, fds,
// umask, rlimits, and what its stdio are.
const whatItHolds = `grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Uid|Gid|Groups|SigBlk|SigIgn):' /proc/self/status
for n in /proc/self/ns/*; do echo "$n $(readlink $n)"; done
cat /proc/self/cgroup
env
pwd
ls /proc/self/fd
umask
ulimit -a
test -p /dev/stdin && echo stdin-is-a-pipe
test -p /dev/stdout && echo stdout-is-a-pipe
echo via-dev-stdout > /dev/stdout; echo "dev-stdout=$?"
`

var logTime = regexp.MustCompile(`time="[^"]*" `)

// same runs args through both paths and requires identical results (the
// time stamp of an error log line aside).
func same(t *testing.T, r *harness.Runtime, stdin string, args ...string) result {
	t.Helper()
	return sameVia(t, r, fast, stdin, args...)
}

// sameVia is same with the fast side's MXC_EXEC_FAST: "" (the default)
// for what the server refuses and hands back to the normal path.
func sameVia(t *testing.T, r *harness.Runtime, mode, stdin string, args ...string) result {
	t.Helper()
	f := run(t, r, mode, stdin, nil, args...)
	n := run(t, r, normal, stdin, nil, args...)
	f.Stderr = logTime.ReplaceAllString(f.Stderr, "")
	n.Stderr = logTime.ReplaceAllString(n.Stderr, "")
	if f != n {
		t.Errorf("%q:\n fast path:   %s\n normal path: %s", args, f, n)
	}
	return f
}

func TestPlainContainerExecIsExact(t *testing.T) {
	r, _, id, _ := plainContainer(t, nil)
	res := same(t, r, "", "exec", id, "sh", "-c", whatItHolds)
	for _, want := range []string{"NoNewPrivs:\t1", "stdin-is-a-pipe", "stdout-is-a-pipe", "HOME=/root"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
	same(t, r, "", "exec", "-e", "FOO=bar", "-e", " A=1, B=2 ", "--cwd", "/tmp", id, "sh", "-c", "env; pwd")
	same(t, r, "", "exec", "--env", "HOME=", "--env=PATH=/bin", id, "sh", "-c", "echo $HOME $PATH")
	same(t, r, "", "exec", "-e", "HOME=/h", "-e", "TERM=dumb", id, "env")
	same(t, r, "", "--log-format", "json", "exec", id, "sh", "-c", "echo out; echo err >&2; exit 3")
	same(t, r, "some input\n", "exec", id, "sh", "-c", "read l; echo got $l")
	// What the fast path cannot run it hands back to the normal path, which
	// reports it as always; the server says why.
	for _, args := range [][]string{
		{"exec", id, "/no/such/binary"},
		{"exec", id, "nosuchcommand"},
		{"exec", "--cwd", "/no/such/dir", id, "true"},
		{"exec", "-e", "=x", id, "true"},
		{"exec", id, "/etc"},
	} {
		res := sameVia(t, r, "", "", args...)
		if res.Code != 255 {
			t.Errorf("%q: exit %d, want 255 (exec failed)", args, res.Code)
		}
		if res := run(t, r, "", "", []string{"MXC_EXEC_FAST_DEBUG=1"}, args...); !strings.Contains(res.Stderr, "normal path: the exec server refused") {
			t.Errorf("%q: not refused by the server: %s", args, res)
		}
	}
}

func TestFastPathIsTaken(t *testing.T) {
	r, _, id, st := plainContainer(t, nil)
	server := nsPid(t, st.Pid)
	debug := []string{"MXC_EXEC_FAST_DEBUG=1"}
	// Field 4 of /proc/<sh>/stat: the process's parent.
	ppid := `read -r a b c p rest < /proc/$$/stat; echo $p`
	res := run(t, r, fast, "", debug, "exec", id, "sh", "-c", ppid)
	if res.Code != 0 || !strings.Contains(res.Stderr, "exec: fast path") {
		t.Fatalf("fast path not taken: %s", res)
	}
	if got := strings.TrimSpace(res.Stdout); got != strconv.Itoa(server) {
		t.Errorf("the process's parent is %s, want the exec server (%d)", got, server)
	}
	res = run(t, r, normal, "", debug, "exec", id, "sh", "-c", ppid)
	if res.Code != 0 || strings.Contains(res.Stderr, "fast path") || strings.TrimSpace(res.Stdout) == strconv.Itoa(server) {
		t.Errorf("MXC_EXEC_FAST=0 still took the fast path: %s", res)
	}
	// The default mode takes the fast path too when a server runs.
	res = run(t, r, "", "", debug, "exec", id, "true")
	if res.Code != 0 || !strings.Contains(res.Stderr, "exec: fast path") {
		t.Errorf("default mode: %s", res)
	}
}

func TestExitStatusAndSignals(t *testing.T) {
	r, _, id, _ := plainContainer(t, nil)
	for _, c := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0}, {"exit 7", 7}, {"exit 255", 255},
		{"kill -KILL $$", 128 + 9}, {"kill -TERM $$", 128 + 15}, {"kill -SEGV $$", 128 + 11},
	} {
		if res := same(t, r, "", "exec", id, "sh", "-c", c.script); res.Code != c.code {
			t.Errorf("%q: exit %d, want %d", c.script, res.Code, c.code)
		}
	}
	// Signals sent to `mxc-runtime exec` reach the process.
	for _, mode := range []string{fast, normal} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGHUP} {
			t.Run(fmt.Sprintf("%s/%v", mode, sig), func(t *testing.T) {
				script := fmt.Sprintf(`trap 'echo caught; exit 42' %d; echo ready; while :; do sleep 0.05; done`, sig)
				code, out := signalled(t, r, mode, id, script, sig)
				if code != 42 || !strings.Contains(out, "caught") {
					t.Errorf("exit %d output %q, want 42 and caught", code, out)
				}
			})
		}
	}
	// SIGKILL cannot be forwarded: it ends the client; the process runs on
	// (as after a normal-path exec whose runtime was killed), unharmed.
}

// signalled starts `exec ID sh -c script`, waits for "ready", sends sig to
// the mxc-runtime process and returns its exit status and output.
func signalled(t *testing.T, r *harness.Runtime, mode, id, script string, sig syscall.Signal) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := r.Command(ctx, "exec", id, "sh", "-c", script)
	cmd.Env = append(cmd.Env, "MXC_EXEC_FAST="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "ready" {
			break
		}
	}
	_ = cmd.Process.Signal(sig)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode(), strings.Join(lines, "\n")
}

func TestStdioRelay(t *testing.T) {
	r, _, id, _ := plainContainer(t, nil)
	// 3 MiB through stdin and back, unchanged.
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 3<<20/17)
	res := run(t, r, fast, string(big), nil, "exec", id, "sh", "-c", "cat; echo done >&2")
	if res.Code != 0 || sha256.Sum256([]byte(res.Stdout)) != sha256.Sum256(big) || res.Stderr != "done\n" {
		t.Errorf("stdin→stdout relay: exit %d, %d bytes back of %d, stderr %q", res.Code, len(res.Stdout), len(big), res.Stderr)
	}
	// Output still buffered when the process exits is delivered.
	same(t, r, "", "exec", id, "sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; exit 4")
	// A background process holding stdout open keeps the exec until it
	// closes it (as on the normal path, which copies until EOF).
	start := time.Now()
	res = run(t, r, fast, "", nil, "exec", id, "sh", "-c", "(sleep 1; echo late) & echo early")
	if res.Stdout != "early\nlate\n" || time.Since(start) < 900*time.Millisecond {
		t.Errorf("background writer: %s after %s", res, time.Since(start))
	}
}

func TestFallbacks(t *testing.T) {
	r, b, id, st := plainContainer(t, nil)
	server := nsPid(t, st.Pid)
	debug := []string{"MXC_EXEC_FAST_DEBUG=1"}
	ppid := `read -r a b c p rest < /proc/$$/stat; echo $p`
	process := *b.Spec.Process
	process.Args = []string{"sh", "-c", ppid}
	pj, _ := json.Marshal(process)
	pf := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(pf, pj, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"user":          {"exec", "--user", "1000:1000", id, "sh", "-c", ppid},
		"cap":           {"exec", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", ppid},
		"process":       {"exec", "--process", pf, id},
		"no-new-privs":  {"exec", "--no-new-privs", id, "sh", "-c", ppid},
		"debug flag":    {"--debug", "exec", id, "sh", "-c", ppid},
		"two env forms": {"exec", "-e", "A=1", "--env", "B=2", id, "sh", "-c", ppid},
	} {
		t.Run(name, func(t *testing.T) {
			res := run(t, r, fast, "", debug, append([]string{}, args...)...)
			if strings.Contains(res.Stderr, "fast path") {
				t.Errorf("took (or required) the fast path: %s", res)
			}
			if name == "two env forms" {
				if res.Code == 0 {
					t.Errorf("the CLI accepted both forms of --env: %s", res)
				}
				return
			}
			if res.Code != 0 || strings.TrimSpace(res.Stdout) == strconv.Itoa(server) {
				t.Errorf("normal path expected: %s", res)
			}
		})
	}
	t.Run("tty", func(t *testing.T) {
		res := run(t, r, fast, "", debug, "exec", "-t", id, "true")
		if strings.Contains(res.Stderr, "fast path") || res.Code != 255 || !strings.Contains(res.Stderr, "terminal") {
			t.Errorf("exec -t without a terminal: %s", res)
		}
	})
	t.Run("detach", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		res := run(t, r, fast, "", debug, "exec", "--detach", "--pid-file", pidFile, id, "sleep", "60")
		if res.Code != 0 || strings.Contains(res.Stderr, "fast path") {
			t.Fatalf("exec --detach: %s", res)
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 || processGone(pid) {
			t.Fatalf("pid file %q", b)
		}
		// Its parent is not the exec server: the caller (a shim) reaps it.
		parent := ppidOf(t, pid)
		if parent == st.Pid {
			t.Errorf("a detached exec is the exec server's child")
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	})
	t.Run("paused", func(t *testing.T) {
		r.MustRun("pause", id)
		res := run(t, r, fast, "", debug, "exec", id, "true")
		r.MustRun("resume", id)
		if res.Code != 255 || !strings.Contains(res.Stderr, "paused") || strings.Contains(res.Stderr, "exec: fast path (") {
			t.Errorf("exec into a paused container: %s", res)
		}
	})
	t.Run("config.json changed", func(t *testing.T) {
		later := time.Now().Add(time.Second)
		if err := os.Chtimes(filepath.Join(b.Dir, "config.json"), later, later); err != nil {
			t.Fatal(err)
		}
		res := run(t, r, fast, "", debug, "exec", id, "true")
		if res.Code != 255 || !strings.Contains(res.Stderr, "config.json changed") {
			t.Errorf("required fast path with a changed config.json: %s", res)
		}
		// The default mode takes the normal path, and (MXC_EXEC_FAST=1)
		// replaces the server.
		res = run(t, r, "1", "", debug, "exec", id, "true")
		if res.Code != 0 || !strings.Contains(res.Stderr, "normal path: the bundle's config.json changed") {
			t.Errorf("exec with a changed config.json: %s", res)
		}
		deadline := time.Now().Add(20 * time.Second)
		for run(t, r, fast, "", nil, "exec", id, "true").Code != 0 {
			if time.Now().After(deadline) {
				t.Fatal("no new exec server after config.json changed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s := status(t, r, id); s.Pid == st.Pid || !processGone(st.Pid) {
			t.Errorf("the old server %d was not replaced: %+v", st.Pid, s)
		}
	})
}

func ppidOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	p, _ := strconv.Atoi(f[1])
	return p
}

func TestServerKilledFallsBackAndRestarts(t *testing.T) {
	r, _, id, st := plainContainer(t, nil)
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(st.Pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	debug := []string{"MXC_EXEC_FAST_DEBUG=1"}
	res := run(t, r, fast, "", debug, "exec", id, "true")
	if res.Code != 255 || !strings.Contains(res.Stderr, "fast path required") {
		t.Errorf("required fast path without a server: %s", res)
	}
	// The default mode falls back; with MXC_EXEC_FAST=1 a plain container
	// gets a new server from that exec.
	res = run(t, r, "1", "", debug, "exec", id, "echo", "fine")
	if res.Code != 0 || res.Stdout != "fine\n" || !strings.Contains(res.Stderr, "normal path") {
		t.Fatalf("fallback after the server died: %s", res)
	}
	s := waitServer(t, r, id)
	if s.Pid == st.Pid {
		t.Fatalf("same server pid %d", s.Pid)
	}
	if res := run(t, r, fast, "", nil, "exec", id, "echo", "fast"); res.Code != 0 || res.Stdout != "fast\n" {
		t.Errorf("fast path after the restart: %s", res)
	}
	// `exec-server stop` stops it; exec goes on through the normal path.
	r.MustRun("exec-server", "stop", id)
	if !processGone(s.Pid) {
		t.Errorf("server %d still runs after stop", s.Pid)
	}
	if res := run(t, r, "", "", nil, "exec", id, "true"); res.Code != 0 {
		t.Errorf("exec after stop: %s", res)
	}
}

// TestStoppedServer: a server that stops answering (SIGSTOP, e.g. from an
// agent process of its uid) is killed by the client waiting on it, before
// it read the request, and the exec takes the normal path.
func TestStoppedServer(t *testing.T) {
	r, _, id, st := plainContainer(t, nil)
	if err := syscall.Kill(st.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(st.Pid, syscall.SIGCONT) })
	res := run(t, r, "1", "", []string{"MXC_EXEC_FAST_DEBUG=1"}, "exec", id, "echo", "ran")
	if res.Code != 0 || res.Stdout != "ran\n" || !strings.Contains(res.Stderr, "does not answer") {
		t.Fatalf("exec with a stopped server: %s", res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(st.Pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !processGone(st.Pid) {
		t.Error("the stopped server was not killed")
	}
	if s := waitServer(t, r, id); s.Pid == st.Pid {
		t.Error("no new server")
	}
}

func TestNothingLeftAfterDelete(t *testing.T) {
	for _, hostPID := range []bool{false, true} {
		t.Run(fmt.Sprintf("hostpid=%v", hostPID), func(t *testing.T) {
			r, _, id, st := plainContainer(t, func(s *specs.Spec) {
				if hostPID {
					var keep []specs.LinuxNamespace
					for _, ns := range s.Linux.Namespaces {
						if ns.Type != specs.PIDNamespace {
							keep = append(keep, ns)
						}
					}
					s.Linux.Namespaces = keep
				}
			})
			if res := run(t, r, fast, "", nil, "exec", id, "true"); res.Code != 0 {
				t.Fatalf("exec: %s", res)
			}
			if hostPID {
				// The init exits; the server (no pid namespace to take it
				// down) must not serve a stopped container.
				r.MustRun("kill", id, "KILL")
				if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
					t.Fatal(err)
				}
				res := run(t, r, fast, "", nil, "exec", id, "true")
				if res.Code != 255 || !strings.Contains(res.Stderr, "init is not running") {
					t.Errorf("fast exec into a stopped container: %s", res)
				}
				res = run(t, r, "", "", nil, "exec", id, "true")
				if res.Code != 255 || !strings.Contains(res.Stderr, "stopped") {
					t.Errorf("exec into a stopped container: %s", res)
				}
			}
			r.MustRun("delete", "--force", id)
			deadline := time.Now().Add(5 * time.Second)
			for !processGone(st.Pid) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !processGone(st.Pid) {
				t.Errorf("exec server %d still runs after delete", st.Pid)
			}
			if _, err := os.Stat(filepath.Join(r.Root, id)); !os.IsNotExist(err) {
				t.Errorf("state dir (with the socket) left: %v", err)
			}
		})
	}
}

// anonKiB is a process's anonymous memory (/proc/<pid>/smaps_rollup).
func anonKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Anonymous:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no Anonymous line in smaps_rollup of %d", pid)
	return 0
}

// TestServerMemoryStaysFlat: the server prepares each process's
// environment and lookup buffer and frees them once its child (which
// shares the server's memory until execve) has exec'd or failed; many
// execs, with large environments and with commands that are not found,
// leave its memory where it was.
func TestServerMemoryStaysFlat(t *testing.T) {
	r, _, id, st := plainContainer(t, nil)
	big := "BIG=" + strings.Repeat("x", 16<<10)
	// The lookup's buffer is sized by PATH: 16 KiB of directories that
	// do not exist before the one that holds the command.
	long := "PATH=" + strings.Repeat("/nonexistent/"+strings.Repeat("d", 200)+":", 80) + "/bin"
	round := func() {
		if res := run(t, r, fast, "", nil, "exec", "-e", big, "-e", long, id, "true"); res.Code != 0 {
			t.Fatalf("exec: %s", res)
		}
		if res := run(t, r, fast, "", nil, "exec", id, "no-such-command"); res.Code == 0 || !strings.Contains(res.Stderr, "look up the command") {
			t.Fatalf("a command that is not found: %s", res)
		}
	}
	for i := 0; i < 10; i++ {
		round()
	}
	before := anonKiB(t, st.Pid)
	for i := 0; i < 150; i++ {
		round()
	}
	if after := anonKiB(t, st.Pid); after > before+64 {
		t.Errorf("the exec server's anonymous memory grew from %d to %d KiB over 300 requests", before, after)
	}
}
