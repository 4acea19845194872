//go:build windows

package hcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	winio "github.com/Microsoft/go-winio"
	"github.com/Microsoft/hcsshim"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"mxc.dev/mxc/audit"
)

// pipeSDDL lets only SYSTEM and Administrators open a shim's control pipe.
const pipeSDDL = "D:P(A;;GA;;;SY)(A;;GA;;;BA)"

// shutdownTimeout bounds a graceful container shutdown before Terminate.
const shutdownTimeout = 5 * time.Minute

// ShimOpts are the shim's inputs. Control is the channel to the verb that
// launched it (its stdout): the shim writes ShimSuccess or an error text
// there and closes it. Data (its stdin) carries exec's process spec.
type ShimOpts struct {
	ID      string
	Exec    bool
	Stdio   Stdio
	Control io.WriteCloser
	Data    io.Reader
}

// Shim is the long-lived side of a container process, as runhcs's shim:
// it owns the process's stdio, waits for it, and (for the init process)
// records the exit, enforces the policy's timeout and shuts the container
// down when init ends. It returns the process's exit code.
func (rt *Runtime) Shim(o ShimOpts) (code int, err error) {
	control := o.Control
	report := func(err error) {
		if control == nil {
			return
		}
		if err == nil {
			_, _ = control.Write(ShimSuccess)
		} else {
			_, _ = control.Write([]byte(err.Error()))
		}
		control.Close()
		control = nil
	}
	defer func() { report(err) }()

	rec, err := rt.load(o.ID)
	if err != nil {
		return -1, err
	}
	c, err := hcsshim.OpenContainer(o.ID)
	if err != nil {
		return -1, fmt.Errorf("open HCS container %s: %w", o.ID, err)
	}
	defer c.Close()
	if o.Exec {
		return rt.shimExec(rec, c, o, report)
	}
	return rt.shimInit(rec, c, o, report)
}

func (rt *Runtime) shimExec(rec *Record, c hcsshim.Container, o ShimOpts, report func(error)) (int, error) {
	data, err := io.ReadAll(o.Data)
	if err != nil {
		return -1, fmt.Errorf("read process spec: %w", err)
	}
	var ps specs.Process
	if err := json.Unmarshal(data, &ps); err != nil {
		return -1, fmt.Errorf("process spec: %w", err)
	}
	pc, err := ProcessFor(&ps)
	if err != nil {
		return -1, fmt.Errorf("process: %w", err)
	}
	p, err := c.CreateProcess(pc.toHCSShim())
	if err != nil {
		return -1, fmt.Errorf("create process in container %s: %w", rec.ID, err)
	}
	defer p.Close()
	drain, err := wireStdio(p, o.Stdio)
	if err != nil {
		_ = p.Kill()
		return -1, err
	}
	report(nil)
	code := waitExit(p)
	drain()
	return code, nil
}

func (rt *Runtime) shimInit(rec *Record, c hcsshim.Container, o ShimOpts, report func(error)) (code int, err error) {
	dir := rt.dir(rec.ID)
	exited := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(exited)
	}()
	l, err := winio.ListenPipe(ShimPipePath(rec.UniqueID), &winio.PipeConfig{SecurityDescriptor: pipeSDDL})
	if err != nil {
		return -1, fmt.Errorf("listen on shim pipe: %w", err)
	}
	defer l.Close()
	// create may return now: the shim waits for start.
	report(nil)

	// From here on the container must not outlive a failure of the shim.
	terminateOnFailure := true
	defer func() {
		if terminateOnFailure {
			if err := c.Terminate(); err == nil || hcsshim.IsPending(err) {
				_ = c.WaitTimeout(time.Minute)
			}
		}
	}()

	var conn net.Conn
	accepted := make(chan error, 1)
	go func() {
		var err error
		conn, err = l.Accept()
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			return -1, fmt.Errorf("shim pipe: %w", err)
		}
	case <-exited:
		writeExit(dir, -1, "container stopped before start")
		return -1, errors.New("the container stopped before it was started")
	}
	defer conn.Close()
	startErr := func(err error) (int, error) {
		_, _ = conn.Write([]byte(err.Error()))
		conn.Close()
		writeExit(dir, -1, "init process failed to start")
		return -1, err
	}

	p, err := c.CreateProcess(rec.Result.Init.toHCSShim())
	if err != nil {
		return startErr(fmt.Errorf("create init process: %w", err))
	}
	defer p.Close()
	drain, err := wireStdio(p, o.Stdio)
	if err != nil {
		_ = p.Kill()
		return startErr(err)
	}
	if err := WritePid(filepath.Join(dir, InitPidFile), p.Pid()); err != nil {
		_ = p.Kill()
		return startErr(err)
	}
	reason := "exited"
	var mu sync.Mutex
	if ms := rec.Result.TimeoutMS; ms > 0 {
		t := time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			mu.Lock()
			reason = "timeout"
			mu.Unlock()
			rt.auditEvent(rec, audit.KindTimeout, map[string]string{"timeoutMS": strconv.FormatUint(ms, 10)})
			logrus.Infof("container %s: policy process.timeout of %d ms reached; terminating", rec.ID, ms)
			_ = c.Terminate()
		})
		defer t.Stop()
	}
	terminateOnFailure = false
	_, _ = conn.Write(ShimSuccess)
	conn.Close()

	code = waitExit(p)
	drain()
	mu.Lock()
	writeExit(dir, code, reason)
	mu.Unlock()

	// Init is gone: shut the container down, forcibly if it takes too long.
	if err := c.Shutdown(); err != nil && !hcsshim.IsPending(err) && !hcsshim.IsAlreadyStopped(err) {
		_ = c.Terminate()
	}
	select {
	case <-exited:
	case <-time.After(shutdownTimeout):
		_ = c.Terminate()
		<-exited
	}
	return code, nil
}

func writeExit(dir string, code int, reason string) {
	if err := WriteJSONAtomic(filepath.Join(dir, ExitFile), Exit{Code: code, Time: time.Now().UTC(), Reason: reason}); err != nil {
		logrus.Warnf("record exit: %v", err)
	}
}

// waitExit waits for p and returns its exit code (-1 if unknown).
func waitExit(p hcsshim.Process) int {
	_ = p.Wait()
	code, err := p.ExitCode()
	if err != nil {
		return -1
	}
	return code
}

// wireStdio copies between the shim's stdio handles and the process's
// pipes. The returned func waits (briefly) for the output to drain.
func wireStdio(p hcsshim.Process, s Stdio) (func(), error) {
	in, out, errp, err := p.Stdio()
	if err != nil {
		return nil, fmt.Errorf("process stdio: %w", err)
	}
	if in != nil {
		if s.Stdin != nil {
			go func() {
				_, _ = io.Copy(in, s.Stdin)
				_ = p.CloseStdin()
			}()
		} else {
			_ = p.CloseStdin()
		}
	}
	var wg sync.WaitGroup
	pump := func(dst *os.File, src io.ReadCloser) {
		if src == nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w io.Writer = io.Discard
			if dst != nil {
				w = dst
			}
			_, _ = io.Copy(w, src)
			src.Close()
		}()
	}
	pump(s.Stdout, out)
	pump(s.Stderr, errp)
	return func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			// A process left behind may hold the pipe open; do not hang on it.
		}
	}, nil
}
