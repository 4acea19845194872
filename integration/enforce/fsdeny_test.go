//go:build linux

package enforce_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// auditStatus gets (set < 0) or sets the kernel audit "enabled" flag and
// returns the value before.
func auditEnabled(set int) (bool, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return false, err
	}
	defer unix.Close(s)
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	req := make([]byte, 16)
	binary.NativeEndian.PutUint32(req[0:], 16)
	binary.NativeEndian.PutUint16(req[4:], unix.AUDIT_GET)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	buf := make([]byte, 8192)
	was := false
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil {
			return false, err
		}
		if n >= 24 && binary.NativeEndian.Uint16(buf[4:]) == unix.AUDIT_GET {
			was = binary.NativeEndian.Uint32(buf[20:]) != 0
			break
		}
	}
	if set < 0 {
		return was, nil
	}
	msg := make([]byte, 16+40)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.AUDIT_SET)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[16:], unix.AUDIT_STATUS_ENABLED)
	binary.NativeEndian.PutUint32(msg[20:], uint32(set))
	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return was, err
	}
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil {
			return was, err
		}
		if n >= 20 && binary.NativeEndian.Uint16(buf[4:]) == unix.NLMSG_ERROR {
			if e := int32(binary.NativeEndian.Uint32(buf[16:])); e != 0 {
				return was, unix.Errno(-e)
			}
			return was, nil
		}
	}
}

// TestFSDenyAuditEvents: with the kernel's audit on, Landlock's denials
// (ABI 7) become fs.deny events of the container. mxc never turns audit on
// itself; the test does, and restores the host's setting.
func TestFSDenyAuditEvents(t *testing.T) {
	harness.RequireRoot(t)
	escapeBinary(t)
	was, err := auditEnabled(-1)
	if err != nil {
		t.Skipf("kernel audit not available: %v", err)
	}
	if !was {
		if _, err := auditEnabled(1); err != nil {
			if errors.Is(err, unix.EPERM) {
				t.Skip("cannot enable kernel audit here (locked)")
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = auditEnabled(0) })
	}
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		t.Run(string(tier), func(t *testing.T) {
			r := harness.NewRuntime(t)
			b := agentBundle(t, basePolicy(tier), "sleep", "600")
			id := newID("fsdeny")
			startDetached(t, r, b, id)
			// The agent's shell runs the command and lives on, as an
			// agent's shell does: the record is attributed by the
			// process or, once it exited, by its parent's mount
			// namespace. (A process exec'd directly, whose parent is the
			// host's `mxc-runtime exec`, is attributed by that command
			// line only while it lives: on a loaded machine the kernel
			// can deliver the record after both exited, and the record
			// is then dropped by design, never guessed. TestAttribute in
			// linux/monitor covers each way.)
			res := r.Run("exec", id, "sh", "-c", "escape write /opt/unlisted/pwned; sleep 2")
			if !strings.Contains(res.Stdout, "DENIED") {
				t.Fatalf("write outside the tree: %s %s", res.Stdout, res.Stderr)
			}
			found := waitFor(5*time.Second, func() bool {
				for _, ev := range auditEvents(t, r, id) {
					// Landlock names the directory a file could not be made in.
					if ev.Kind == "fs.deny" && ev.Detail["path"] == "/opt/unlisted" && ev.Detail["access"] == "fs.make_reg" {
						return ev.Agent == "escape-battery"
					}
				}
				return false
			})
			if !found {
				t.Errorf("no fs.deny event for /opt/unlisted (fs.make_reg): %+v", auditEvents(t, r, id))
			}
		})
	}
}
