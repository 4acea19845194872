//go:build linux

package container

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/cgkill"
	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/internal/procstat"
)

// Delete implements `delete [--force]`. A container whose create was
// interrupted (mxc.json says "creating", no libcontainer state) is always
// cleaned up: its processes are killed through the cgroups recorded before
// creation, its cgroups and helpers removed, its state dir deleted.
func (r *Runtime) Delete(id string, force bool) error {
	lock, err := AcquireLock(r.Root, id)
	if err != nil {
		return err
	}
	stateDir := r.stateDir(id)
	if _, err := os.Lstat(stateDir); errors.Is(err, os.ErrNotExist) {
		// A create killed before libcontainer made the state dir may
		// already have left policy state keyed by the id (the session
		// tier's id-mapped rootfs mount and id range): undo it, under the
		// id's lock, so that delete is the one way to clean up any create.
		r.teardownPolicy(stateDir, nil)
		lock.ReleaseAndRemove()
		if force {
			return nil
		}
		return fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	defer lock.ReleaseAndRemove()
	rec, recErr := LoadRecord(stateDir)
	if recErr != nil {
		logrus.Warnf("container %s: %v", id, recErr)
	}
	c, err := libcontainer.Load(r.Root, id)
	if err != nil {
		if !errors.Is(err, libcontainer.ErrNotExist) && !force {
			return fmt.Errorf("load container %q: %w (delete --force removes it anyway)", id, err)
		}
		// Interrupted create, or unreadable state: undo by the journal.
		return r.cleanupIncomplete(stateDir, rec)
	}
	st, err := c.Status()
	if err != nil {
		return err
	}
	switch {
	case st == libcontainer.Stopped:
	case st == libcontainer.Created || force:
		if err := killAndWait(c); err != nil {
			return err
		}
		if st == libcontainer.Paused {
			// libcontainer's SIGKILL thawed the cgroup behind c's back,
			// and c cannot find out: a container paused while created
			// refuses the state change paused -> created ("invalid
			// state transition"), so c stays paused, and its Destroy
			// refuses (ErrPaused) while the init is in its exit. A
			// fresh load starts from what is there now.
			if fresh, err := libcontainer.Load(r.Root, id); err == nil {
				c = fresh
			}
		}
	default:
		return fmt.Errorf("cannot delete container %q that is not stopped: %s (use --force)", id, st)
	}
	r.destroy(c, stateDir, rec)
	return nil
}

// killAndWait SIGKILLs the container and waits until its init is gone.
// libcontainer's SIGKILL also thaws a paused container: frozen tasks
// cannot act on it.
func killAndWait(c *libcontainer.Container) error {
	pid := 0
	if ls, err := c.State(); err == nil {
		pid = ls.InitProcessPid
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// SIGKILL each time round: a cgroup frozen again meanwhile (a
		// pause racing with this delete) is thawed again. Signal 0
		// then says whether the init is there (SIGKILL does not when
		// the pid namespace is the host's: it goes to the cgroup's
		// processes, without a word once they are gone).
		_ = c.Signal(unix.SIGKILL)
		if err := c.Signal(unix.Signal(0)); err != nil {
			return nil
		}
		// An init that is a pid namespace's reaper stays alive in its
		// exit (after it left its cgroup) until every other task of the
		// namespace is reaped, and a task that joined from outside (an
		// exec, the exec server) is reaped by its parent outside: the
		// host's init, which may take seconds. Such an init runs no more
		// code of the container: it is gone as far as delete is concerned.
		if pid > 0 && exiting(pid) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("container init still running 10s after SIGKILL")
}

// exiting reports whether pid has entered its exit (PF_EXITING in
// /proc/PID/stat's flags).
func exiting(pid int) bool {
	st, err := procstat.Read(pid)
	return err == nil && st.Exiting()
}

// destroy removes everything of a container that libcontainer knows about,
// then mxc's part. Errors are logged: destroy must go as far as it can.
func (r *Runtime) destroy(c *libcontainer.Container, stateDir string, rec *Record) {
	// mxc enforcement (issue 4): the policy teardown runs before
	// libcontainer's Destroy, which removes the whole state dir, because it
	// reads what it must undo from there (egress.json, monitor.json).
	var cgDone chan struct{}
	if r.Policy != nil && c != nil && rec != nil && rec.PolicyDigest != "" && emptyWhenStopped(c) {
		// The policy teardown (monitor, egress filter, session tier) takes
		// a few ms; the cgroups are removed meanwhile, and Destroy finds
		// them gone.
		cgDone = make(chan struct{})
		go func() {
			defer close(cgDone)
			removeCgroups(rec.CgroupPaths)
		}()
	}
	r.teardownPolicy(stateDir, rec)
	phasemark.Mark("destroy: policy torn down")
	if cgDone != nil {
		<-cgDone
	}
	phasemark.Mark("destroy: cgroups removed")
	// An init killed by delete --force may still be in its exit (see
	// killAndWait): libcontainer's Destroy then refuses with ErrRunning and
	// does none of its work, so mxc finishes it below, poststop hooks
	// included, as Destroy would have.
	var exited *specs.State
	if c != nil {
		err := c.Destroy()
		if err == nil {
			// libcontainer removed the cgroups (the ones the record
			// lists) and the whole state dir.
			return
		}
		switch {
		case errors.Is(err, libcontainer.ErrRunning):
			exited = exitingInitState(c)
			if exited == nil && c.Destroy() == nil {
				// The init finished its exit (now a zombie: stopped)
				// between the two looks: Destroy did it all.
				return
			}
		case errors.Is(err, unix.ENOTEMPTY):
			// Destroy removed the cgroups, then met a file written into
			// the state dir meanwhile (an exec racing with this delete
			// restarting a helper or the exec server) and stopped short
			// of the poststop hooks: the rest is done below.
			exited = stoppedState(c)
		}
		if exited == nil {
			logrus.Warnf("destroy %s: %v", c.ID(), err)
		}
	}
	if exited != nil && rec != nil && !c.Config().Namespaces.IsPrivate(configs.NEWPID) {
		// Without a pid namespace of its own the init's exit took nobody
		// else with it (libcontainer's destroy does the same kill).
		cgkill.All(rec.CgroupPaths, 100)
	}
	if rec != nil {
		removeCgroups(rec.CgroupPaths)
	}
	if err := removeStateDir(stateDir); err != nil {
		logrus.Warnf("remove %s: %v", stateDir, err)
	}
	if exited != nil && c.Config().Hooks != nil {
		if err := c.Config().Hooks.Run(configs.Poststop, exited); err != nil {
			logrus.Warnf("destroy %s: unable to run post stop hooks: %v", c.ID(), err)
		}
	}
}

// removeStateDir removes the state dir, again if a writer racing with the
// delete (see destroy) added a file while it was being emptied.
func removeStateDir(dir string) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
	}
	return err
}

// stoppedState is the OCI state poststop hooks get: c's, status "stopped",
// no pid; nil if it cannot be had.
func stoppedState(c *libcontainer.Container) *specs.State {
	s, err := c.OCIState()
	if err != nil {
		return nil
	}
	return asStopped(s)
}

func asStopped(s *specs.State) *specs.State {
	s.Status = specs.StateStopped
	s.Pid = 0
	return s
}

// exitingInitState returns the OCI state poststop hooks get (status
// "stopped", no pid) when c's init has entered its exit but not finished
// it (Destroy refuses such a container with ErrRunning); nil otherwise.
func exitingInitState(c *libcontainer.Container) *specs.State {
	s, err := c.OCIState()
	if err != nil || s.Pid <= 0 || !exiting(s.Pid) {
		return nil
	}
	return asStopped(s)
}

// emptyWhenStopped reports whether c is stopped and had a pid namespace of
// its own: then its processes all died with its init, and its cgroups are
// empty. (Without one, Destroy must first kill what is left in them.)
func emptyWhenStopped(c *libcontainer.Container) bool {
	st, err := c.Status()
	return err == nil && st == libcontainer.Stopped && c.Config().Namespaces.IsPrivate(configs.NEWPID)
}

func (r *Runtime) teardownPolicy(stateDir string, rec *Record) {
	if r.Policy == nil {
		return
	}
	if rec == nil {
		rec, _ = LoadRecord(stateDir)
	}
	if rec != nil && rec.PolicyDigest == "" {
		// The record is written before any policy state exists, with
		// the digest of the policy if there is one: none, nothing to undo.
		return
	}
	if err := r.Policy.Teardown(stateDir, rec); err != nil {
		logrus.Warnf("policy teardown: %v", err)
	}
}

func (r *Runtime) cleanupIncomplete(stateDir string, rec *Record) error {
	if rec != nil {
		cgkill.All(rec.CgroupPaths, 100)
	}
	r.destroy(nil, stateDir, rec)
	if rec != nil {
		for _, p := range rec.CgroupPaths {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("cgroup %s could not be removed", p)
			}
		}
	}
	return nil
}

// removeCgroups removes the container's cgroups, sub-cgroups first (what
// libcontainer's Destroy does when it runs); a cgroup still emptying is
// retried for ~1 s (cgroups.RemovePath's back-off on EBUSY). Errors are
// left to the callers' checks: cleanupIncomplete reports a cgroup left.
func removeCgroups(paths map[string]string) {
	for _, p := range paths {
		if err := cgroups.RemovePath(p); err != nil {
			logrus.Debugf("remove cgroup %s: %v", p, err)
		}
	}
}
