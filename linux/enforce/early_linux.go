package enforce

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"

	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/linux/container"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/inithello"
	"mxc.dev/mxc/linux/monitor"
	"mxc.dev/mxc/spec"
)

// earlyStart is the part of AfterCreate that needs nothing but the init's
// pid (the monitor's configuration and the egress filter), started as soon
// as the init says hello (package inithello) instead of after
// libcontainer's Start: it then overlaps the init's Go start-up and its
// rootfs mounts (~20 ms) instead of adding to the time the init waits at
// the exec fifo. AfterCreate waits for it; a create that fails before
// AfterCreate cancels it (AbortCreate).
type earlyStart struct {
	conn   *net.UnixConn
	child  *os.File // the init's end, held until Start has forked the init
	cancel context.CancelFunc
	done   chan struct{}
	// Set by the goroutine before done closes.
	pid int   // the init's pid; 0 if no hello came
	err error // afterInit's
}

// earlyHelloWait bounds how long AfterCreate waits for a hello that has not
// come. After a successful Start the init said hello long before (it does
// so before libcontainer's init code runs); only an init without the hello
// code would not, and then AfterCreate does the work itself.
const earlyHelloWait = time.Second

// startEarly gives the init p a hello socket and starts the goroutine that
// waits for the hello and then runs afterInit. MXC_EARLY_START=0 turns it
// off (AfterCreate then does everything after Start, as before).
func (e *Engine) startEarly(p *libcontainer.Process, eff *spec.Effective, cc *container.CreateContext, st *state) error {
	if os.Getenv("MXC_EARLY_START") == "0" {
		return nil
	}
	conn, child, err := inithello.Pair()
	if err != nil {
		return err
	}
	// Right after agentexec's two memfds: the init finds it at E+2.
	p.ExtraFiles = append(p.ExtraFiles, child)
	ctx, cancel := context.WithCancel(context.Background())
	es := &earlyStart{conn: conn, child: child, cancel: cancel, done: make(chan struct{})}
	st.early = es
	go func() {
		defer close(es.done)
		pid, err := inithello.Wait(ctx, conn)
		if err != nil {
			logrus.Debugf("container %s: no init hello (%v): the policy's set-up waits for libcontainer", cc.ID, err)
			return
		}
		es.pid = pid
		phasemark.Mark("early: init hello")
		logrus.Debugf("container %s: init %d said hello: configuring its monitor and egress filter", cc.ID, pid)
		es.err = e.afterInit(ctx, pid, eff, cc, st)
		phasemark.Mark("early: after-init done")
	}()
	return nil
}

// finish waits for the early start once Start has returned.
func (es *earlyStart) finish() {
	es.child.Close()
	_ = es.conn.SetReadDeadline(time.Now().Add(earlyHelloWait))
	<-es.done
	es.conn.Close()
	es.cancel()
}

// abort cancels the early start of a create that failed, and waits for it
// so that the clean-up that follows sees everything it did.
func (es *earlyStart) abort() {
	es.cancel()
	es.child.Close()
	<-es.done
	es.conn.Close()
}

// AbortCreate implements container.PolicyEngine.
func (e *Engine) AbortCreate(cc *container.CreateContext) {
	e.mu.Lock()
	st := e.pending[cc.ID]
	e.mu.Unlock()
	if st != nil && st.early != nil {
		st.early.abort()
		st.early = nil
	}
}

// egressSetupTimeout bounds egress.Setup in create.
const egressSetupTimeout = 30 * time.Second

// recordEgress records that the container has an egress filter before
// anything of it is set up (a create killed from then on leaves a record
// that delete --force follows), and returns egress's view of it.
func (e *Engine) recordEgress(pid int, eff *spec.Effective, cc *container.CreateContext, st *state) (egress.Config, error) {
	rec := cc.Record
	rec.Egress = true
	rec.NetNSPath = st.NetNSPath
	if err := container.SaveRecord(cc.StateDir, rec); err != nil {
		return egress.Config{}, err
	}
	return e.egressConfig(cc.ID, rec.Agent, cc.StateDir, st.NetNSPath, pid, eff), nil
}

// monitorConfig is the monitor's configuration for the init pid (Gate
// left to the caller).
func (e *Engine) monitorConfig(pid int, eff *spec.Effective, cc *container.CreateContext, st *state) monitor.Config {
	return monitor.Config{
		ID:          cc.ID,
		Root:        e.opts.Root,
		StateDir:    cc.StateDir,
		Agent:       cc.Record.Agent,
		InitPid:     pid,
		InitStart:   procstat.StartTime(pid),
		TimeoutMs:   uint64(eff.Timeout() / time.Millisecond),
		OOM:         hasMemoryLimit(cc.Spec),
		KernelAudit: st.kaudit,
		HostPID:     st.HostPID,
		Cgroups:     cc.Record.CgroupPaths,
	}
}

// afterInit configures the monitor and sets up the egress filter for the
// container whose init is pid: the part of AfterCreate that runs early
// when the init says hello.
func (e *Engine) afterInit(ctx context.Context, pid int, eff *spec.Effective, cc *container.CreateContext, st *state) error {
	enforcesNet, err := egress.Enforces(eff)
	if err != nil {
		return err
	}
	if st.lateMon {
		return e.afterInitLate(ctx, pid, eff, cc, st, enforcesNet)
	}
	if mp := st.mon; mp != nil {
		mon := e.monitorConfig(pid, eff, cc, st)
		mon.Gate = mp.host != nil
		if err := mp.start(mon); err != nil {
			return err
		}
	}
	if !enforcesNet {
		return nil
	}
	cfg, err := e.recordEgress(pid, eff, cc, st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, egressSetupTimeout)
	defer cancel()
	if st.mon != nil {
		cfg.Host = st.mon.host
	}
	if err := egress.Setup(ctx, cfg); err != nil {
		return fmt.Errorf("egress filter: %w", err)
	}
	return nil
}
