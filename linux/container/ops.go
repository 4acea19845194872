//go:build linux

package container

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/monitorwatch"
)

// State is the OCI state document `state` prints (plus runc's fields).
type State struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
	// mxc additions: the policy that holds the container.
	PolicyDigest string `json:"mxcPolicyDigest,omitempty"`
	Tier         string `json:"mxcTier,omitempty"`
	// Monitor is whether the container's policy monitor (timeout, oom and
	// fs.deny events, the egress gate) runs: "running" or "gone", while
	// the container is created, running or paused and has one. "gone"
	// means the timeout is unwatched until something restarts it
	// (`policy-ensure`, the mxc shim, the next exec).
	Monitor string `json:"mxcMonitor,omitempty"`
}

// Load opens an existing container; a container whose create was
// interrupted answers with an error saying how to remove it. For the verbs
// that do not take the container's lock (state, kill, exec...).
func (r *Runtime) Load(id string) (*libcontainer.Container, error) {
	return r.load(id, false)
}

// loadLocked is Load for a caller that holds the container's lock.
func (r *Runtime) loadLocked(id string) (*libcontainer.Container, error) {
	return r.load(id, true)
}

func (r *Runtime) load(id string, locked bool) (*libcontainer.Container, error) {
	c, err := libcontainer.Load(r.Root, id)
	if err == nil {
		return c, nil
	}
	if errors.Is(err, libcontainer.ErrNotExist) {
		if _, serr := os.Lstat(r.stateDir(id)); serr == nil {
			// A state dir without libcontainer's state: a create or a
			// delete of id in progress (each holds the lock), or a create
			// that was killed. Wait for the first two to finish, and look
			// again (a delete may also have finished just now).
			if !locked {
				waitUnlocked(r.Root, id)
				return r.load(id, true)
			}
			return nil, fmt.Errorf("container %q was not fully created (create was interrupted): remove it with `delete --force`", id)
		}
		if _, serr := os.Stat(r.Root); errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w (state root %s does not exist)", id, ErrNotExist, r.Root)
		}
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	return nil, fmt.Errorf("load container %q: %w", id, err)
}

// State implements `state`.
func (r *Runtime) State(id string) (*State, error) {
	c, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	return r.state(c)
}

func (r *Runtime) state(c *libcontainer.Container) (*State, error) {
	st, err := c.Status()
	if err != nil {
		return nil, err
	}
	ls, err := c.State()
	if err != nil {
		return nil, err
	}
	pid := ls.BaseState.InitProcessPid
	if st == libcontainer.Stopped {
		pid = 0
	}
	bundle, ann := utils.Annotations(ls.Config.Labels)
	out := &State{
		Version:        ls.BaseState.Config.Version,
		ID:             ls.BaseState.ID,
		InitProcessPid: pid,
		Status:         st.String(),
		Bundle:         bundle,
		Rootfs:         ls.BaseState.Config.Rootfs,
		Created:        ls.BaseState.Created,
		Annotations:    ann,
	}
	stateDir := r.stateDir(c.ID())
	if rec, _ := LoadRecord(stateDir); rec != nil {
		out.PolicyDigest, out.Tier = rec.PolicyDigest, rec.Tier
		if rec.MonitorPid > 0 && st != libcontainer.Stopped {
			out.Monitor = "gone"
			if monitorwatch.IsMonitor(rec.MonitorPid, stateDir) {
				out.Monitor = "running"
			}
		}
	}
	return out, nil
}

// List implements `list`: every container under the root, including ones
// whose create was interrupted (status "creating").
func (r *Runtime) List() ([]State, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range ents {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		owner := "#" + strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
		if u, err := user.LookupId(owner[1:]); err == nil {
			owner = u.Username
		}
		c, err := libcontainer.Load(r.Root, e.Name())
		if err != nil {
			rec, _ := LoadRecord(filepath.Join(r.Root, e.Name()))
			s := State{ID: e.Name(), Status: "creating", Owner: owner, Version: specs.Version}
			if rec != nil {
				s.Bundle, s.Created = rec.Bundle, rec.Created
			}
			out = append(out, s)
			continue
		}
		s, err := r.state(c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "state of %s: %v\n", e.Name(), err)
			continue
		}
		s.Owner = owner
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Start implements `start`.
func (r *Runtime) Start(id string) error {
	lock, err := AcquireLock(r.Root, id)
	if err != nil {
		return err
	}
	defer lock.Release()
	c, err := r.loadLocked(id)
	if err != nil {
		return err
	}
	st, err := c.Status()
	if err != nil {
		return err
	}
	switch st {
	case libcontainer.Created:
		return c.Exec()
	case libcontainer.Stopped:
		return fmt.Errorf("cannot start container %q: it has stopped", id)
	case libcontainer.Running:
		return fmt.Errorf("cannot start container %q: it is already running", id)
	default:
		return fmt.Errorf("cannot start container %q in the %s state", id, st)
	}
}

// Kill implements `kill`. With all, every process of the container gets
// the signal (runc's --all).
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if all {
		pids, err := c.Processes()
		if err != nil {
			return fmt.Errorf("list processes: %w", err)
		}
		if len(pids) == 0 {
			return fmt.Errorf("container %q: %w", id, libcontainer.ErrNotRunning)
		}
		for _, p := range pids {
			_ = unix.Kill(p, sig)
		}
		if st, _ := c.Status(); st == libcontainer.Paused && sig == unix.SIGKILL {
			_ = c.Resume()
		}
		return nil
	}
	if err := c.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("container %q is not running", id)
		}
		return err
	}
	return nil
}

// Pause implements `pause`.
func (r *Runtime) Pause(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	return c.Pause()
}

// Resume implements `resume`.
func (r *Runtime) Resume(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	return c.Resume()
}

// Processes implements `ps`'s pid list.
func (r *Runtime) Processes(id string) ([]int, error) {
	c, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	return c.Processes()
}

// EnsureHelpers implements `policy-ensure`: the long-lived supervisor of
// a container (the mxc shim) calls it when the container's policy monitor
// died, so that the timeout is watched again and the egress gate serves
// again without waiting for an exec (which does the same).
func (r *Runtime) EnsureHelpers(id string) error {
	lock, err := AcquireLock(r.Root, id)
	if err != nil {
		return err
	}
	defer lock.Release()
	stateDir := r.stateDir(id)
	if _, err := os.Stat(stateDir); err != nil {
		return fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	eff, err := LoadPolicy(stateDir)
	if err != nil || eff == nil || r.Policy == nil {
		return err
	}
	return r.Policy.EnsureHelpers(stateDir, id, eff)
}
