//go:build linux

package execsrv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Names of the server's files in a container's state dir.
const (
	DirName         = "exec"
	sockName        = "sock"
	infoName        = "info"
	lockName        = "lock"
	startsName      = "starts"
	unavailableName = "unavailable"
)

// ServerVerb and ServeArg make the server's command line
// (`mxc-runtime exec-server serve ...`), which the C constructor
// recognises before Go starts.
const (
	ServerVerb = "exec-server"
	ServeArg   = "serve"
)

// MaxStarts is how many servers a container gets: one that keeps dying
// (killed by the agent, out of memory) is then given up on.
const MaxStarts = 8

// Dir is the server's directory in a container's state dir.
func Dir(stateDir string) string { return filepath.Join(stateDir, DirName) }

// SocketPath is the server's socket.
func SocketPath(stateDir string) string { return filepath.Join(Dir(stateDir), sockName) }

// ServeArgs are the server's arguments after the binary, given the fd
// numbers it inherits.
func ServeArgs(listenFD, configFD, readyFD int) []string {
	return []string{ServerVerb, ServeArg,
		"--listen-fd", strconv.Itoa(listenFD),
		"--config-fd", strconv.Itoa(configFD),
		"--ready-fd", strconv.Itoa(readyFD)}
}

// Mode is MXC_EXEC_FAST: when servers are started and whether the client
// may fall back.
type Mode int

const (
	// ModeOff: no servers, no fast path ("0", "off", "false", "no").
	ModeOff Mode = iota
	// ModeAuto (default): servers for containers with an agent policy.
	ModeAuto
	// ModeAlways: servers for every container ("1", "on", "true", "always").
	ModeAlways
	// ModeRequire: as ModeAlways, and an eligible exec fails instead of
	// taking the normal path (tests).
	ModeRequire
)

// ModeFromEnv reads MXC_EXEC_FAST.
func ModeFromEnv() Mode { return ParseMode(os.Getenv("MXC_EXEC_FAST")) }

// ParseMode parses a MXC_EXEC_FAST value (the C client reads it the same way).
func ParseMode(v string) Mode {
	switch strings.ToLower(v) {
	case "0", "off", "false", "no":
		return ModeOff
	case "1", "on", "true", "always":
		return ModeAlways
	case "require":
		return ModeRequire
	}
	return ModeAuto
}

// StartsFor reports whether a foreground exec into a container should
// start its server when it has none.
func (m Mode) StartsFor(hasPolicy bool) bool {
	return m == ModeAlways || m == ModeRequire || (m == ModeAuto && hasPolicy)
}

// FileID identifies a version of a file (the bundle's config.json, which
// the normal path re-reads at every exec).
type FileID struct {
	Dev, Ino, Size      uint64
	MtimeSec, MtimeNsec uint64
}

// StatFile returns path's FileID.
func StatFile(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return FileID{Dev: st.Dev, Ino: st.Ino, Size: uint64(st.Size), MtimeSec: uint64(st.Mtim.Sec), MtimeNsec: uint64(st.Mtim.Nsec)}, nil
}

// Info is what the client checks before using a server, and what the
// runtime needs to find and stop it.
type Info struct {
	ServerPid   int
	ServerStart uint64
	InitPid     int
	InitStart   uint64
	// FreezeFile is the freezer file that says whether the container is
	// paused (v1 freezer.state, v2 cgroup.freeze); empty if none.
	FreezeFile string
	Bundle     string
	Config     FileID
	// The stdio pipes are owned as the normal path leaves them: created
	// for the container's root (libcontainer's InitializeIO), then given
	// to the process's user (its fixStdioPermissions): StdioUID is the
	// host uid of the process's user, HostRootGID the host gid of the
	// container's root.
	StdioUID, HostRootGID int
	// Audit: the container has an agent policy, so every exec is audited.
	Audit bool
	// UID is the exec'd process's uid (the exec audit event's "uid").
	UID   uint32
	Agent string
}

// Encode renders the info file: one "key value" a line. Paths must not
// contain a newline.
func (in *Info) Encode() ([]byte, error) {
	if strings.ContainsAny(in.FreezeFile+in.Bundle, "\n") {
		return nil, errors.New("exec server info: a path contains a newline")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "v 1\n")
	fmt.Fprintf(&b, "server %d %d\n", in.ServerPid, in.ServerStart)
	fmt.Fprintf(&b, "init %d %d\n", in.InitPid, in.InitStart)
	fmt.Fprintf(&b, "freeze %s\n", in.FreezeFile)
	fmt.Fprintf(&b, "bundle %s\n", in.Bundle)
	c := in.Config
	fmt.Fprintf(&b, "config %d %d %d %d %d\n", c.Dev, c.Ino, c.Size, c.MtimeSec, c.MtimeNsec)
	fmt.Fprintf(&b, "stdio %d %d\n", in.StdioUID, in.HostRootGID)
	audit := 0
	if in.Audit {
		audit = 1
	}
	fmt.Fprintf(&b, "audit %d\n", audit)
	fmt.Fprintf(&b, "uid %d\n", in.UID)
	if in.Agent != "" {
		// A JSON string literal, pasted as is into the audit event.
		a, err := json.Marshal(in.Agent)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "agent %s\n", a)
	}
	return b.Bytes(), nil
}

// ParseInfo parses an info file.
func ParseInfo(data []byte) (*Info, error) {
	in := &Info{}
	version := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "v":
			version = v
		case "server":
			_, err = fmt.Sscanf(v, "%d %d", &in.ServerPid, &in.ServerStart)
		case "init":
			_, err = fmt.Sscanf(v, "%d %d", &in.InitPid, &in.InitStart)
		case "freeze":
			in.FreezeFile = v
		case "bundle":
			in.Bundle = v
		case "config":
			c := &in.Config
			_, err = fmt.Sscanf(v, "%d %d %d %d %d", &c.Dev, &c.Ino, &c.Size, &c.MtimeSec, &c.MtimeNsec)
		case "stdio":
			_, err = fmt.Sscanf(v, "%d %d", &in.StdioUID, &in.HostRootGID)
		case "audit":
			in.Audit = v == "1"
		case "uid":
			var u uint64
			u, err = strconv.ParseUint(v, 10, 32)
			in.UID = uint32(u)
		case "agent":
			err = json.Unmarshal([]byte(v), &in.Agent)
		}
		if err != nil {
			return nil, fmt.Errorf("exec server info: %s: %w", k, err)
		}
	}
	if version != "1" {
		return nil, fmt.Errorf("exec server info: version %q", version)
	}
	return in, nil
}

// WriteInfo writes the info file atomically.
func WriteInfo(stateDir string, in *Info) error {
	b, err := in.Encode()
	if err != nil {
		return err
	}
	p := filepath.Join(Dir(stateDir), infoName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write exec server info: %w", err)
	}
	return os.Rename(tmp, p)
}

// ReadInfo reads the info file.
func ReadInfo(stateDir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(Dir(stateDir), infoName))
	if err != nil {
		return nil, err
	}
	return ParseInfo(b)
}

// ProcStart returns a process's start time (clock ticks since boot, field
// 22 of /proc/<pid>/stat) and whether it is alive (not a zombie).
func ProcStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, f[0] != "Z" && f[0] != "X"
}

// ServerAlive reports whether the recorded server still runs.
func (in *Info) ServerAlive() bool {
	st, alive := ProcStart(in.ServerPid)
	return alive && st == in.ServerStart && isServer(in.ServerPid)
}

// isServer checks a process's command line, so that a recycled pid is
// never taken for (or killed as) a server.
func isServer(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 2 && args[1] == ServerVerb && args[2] == ServeArg
}

// makeDir makes exec/ in the container's state dir, never the state dir
// itself: a server start racing with a delete must not put a removed
// container's state dir back.
func makeDir(stateDir string) error {
	if err := os.Mkdir(Dir(stateDir), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// Lock serialises server starts of one container (an flock on exec/lock).
func Lock(stateDir string) (*os.File, error) {
	if err := makeDir(stateDir); err != nil {
		return nil, fmt.Errorf("exec server dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(Dir(stateDir), lockName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the exec server dir: %w", err)
	}
	return f, nil
}

// MarkUnavailable records why a container has no fast path.
func MarkUnavailable(stateDir, reason string) error {
	if err := makeDir(stateDir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(Dir(stateDir), unavailableName), []byte(reason+"\n"), 0o600)
}

// Unavailable returns the reason recorded by MarkUnavailable.
func Unavailable(stateDir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(Dir(stateDir), unavailableName))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// CountStart increments the start counter and returns the new count.
func CountStart(stateDir string) int {
	p := filepath.Join(Dir(stateDir), startsName)
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	_ = os.WriteFile(p, []byte(strconv.Itoa(n)), 0o600)
	return n
}

// Stop kills the recorded server, if it still runs, and removes its socket
// and info. The process is SIGKILLed: it holds no state worth saving, and
// the processes it started run on (as after a normal-path exec).
func Stop(stateDir string) error {
	in, err := ReadInfo(stateDir)
	if err == nil && in.ServerAlive() {
		if err := unix.Kill(in.ServerPid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stop the exec server %d: %w", in.ServerPid, err)
		}
		// Wait until it is gone (or a zombie its parent reaps), so the
		// next server never shares the socket with it.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if _, alive := ProcStart(in.ServerPid); !alive {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, n := range []string{infoName, sockName} {
		if err := os.Remove(filepath.Join(Dir(stateDir), n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Listen makes the server's listening socket at path (replacing a stale
// one) and returns it as a file to hand to the server.
func Listen(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec server socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	addr := &unix.SockaddrUnix{Name: path}
	if len(path) >= 108 {
		// Too long for sockaddr_un: bind through the directory's fd.
		d, err := os.Open(filepath.Dir(path))
		if err != nil {
			f.Close()
			return nil, err
		}
		defer d.Close()
		addr = &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path))}
	}
	// The directory is 0700, so nobody but root reaches the socket even
	// before the chmod.
	if err := unix.Bind(fd, addr); err != nil {
		f.Close()
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Listen(fd, 128); err != nil {
		f.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return f, nil
}
