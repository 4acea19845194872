//go:build linux

package monitor

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel audit: Landlock ABI 7 reports each denial as audit records
// (LANDLOCK_ACCESS with the path and the right that was missing, next to
// the SYSCALL record of the process), when the kernel's audit is enabled.
// The monitor reads them as a read-only listener of the audit multicast
// group, so it neither replaces nor disturbs an auditd. mxc never turns
// kernel audit on itself: that is a host-wide setting.

const (
	auditNlgrpReadlog = 1 // AUDIT_NLGRP_READLOG
	nlmsgHdrLen       = 16
)

// KernelAuditEnabled asks the kernel whether audit is on (AUDIT_GET).
func KernelAuditEnabled() bool {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return false
	}
	defer unix.Close(s)
	req := make([]byte, nlmsgHdrLen)
	binary.NativeEndian.PutUint32(req[0:], nlmsgHdrLen)
	binary.NativeEndian.PutUint16(req[4:], unix.AUDIT_GET)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1)
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false
	}
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	buf := make([]byte, 8192)
	for i := 0; i < 4; i++ {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil || n < nlmsgHdrLen {
			return false
		}
		typ := binary.NativeEndian.Uint16(buf[4:])
		if typ == unix.AUDIT_GET && n >= nlmsgHdrLen+8 {
			// struct audit_status: mask u32, enabled u32, ...
			return binary.NativeEndian.Uint32(buf[nlmsgHdrLen+4:]) != 0
		}
	}
	return false
}

// fsDenial is one Landlock denial as the kernel reported it.
type fsDenial struct {
	Domain   string
	Blockers string
	Path     string
	Pid      int
	PPid     int
	Comm     string
	Exe      string
	Syscall  string
}

// auditEvent collects the records of one audit event (one serial).
type auditEvent struct {
	denials []fsDenial
	syscall map[string]string
	seen    time.Time
}

// readDenials listens to the audit multicast group until ctx is done and
// calls fn for every Landlock filesystem denial; ready is called once the
// subscription is in place.
func readDenials(ctx context.Context, ready func(), fn func(fsDenial)) error {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return fmt.Errorf("audit socket: %w", err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: auditNlgrpReadlog}); err != nil {
		return fmt.Errorf("audit multicast group: %w", err)
	}
	ready()
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 500000})
	pending := map[string]*auditEvent{}
	flush := func(serial string, ev *auditEvent) {
		delete(pending, serial)
		for _, d := range ev.denials {
			if ev.syscall != nil {
				d.Pid, _ = strconv.Atoi(ev.syscall["pid"])
				d.PPid, _ = strconv.Atoi(ev.syscall["ppid"])
				d.Comm = auditString(ev.syscall["comm"])
				d.Exe = auditString(ev.syscall["exe"])
				d.Syscall = ev.syscall["syscall"]
			}
			fn(d)
		}
	}
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(s, buf, 0)
		now := time.Now()
		for serial, ev := range pending {
			if now.Sub(ev.seen) > time.Second {
				flush(serial, ev)
			}
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue // the kernel dropped records under load: keep going
			}
			return fmt.Errorf("audit receive: %w", err)
		}
		for off := 0; off+nlmsgHdrLen <= n; {
			l := int(binary.NativeEndian.Uint32(buf[off:]))
			if l < nlmsgHdrLen || off+l > n {
				break
			}
			typ := binary.NativeEndian.Uint16(buf[off+4:])
			body := strings.TrimRight(string(buf[off+nlmsgHdrLen:off+l]), "\x00\n")
			off += (l + 3) &^ 3
			serial, fields := parseAuditRecord(body)
			if serial == "" {
				continue
			}
			ev := pending[serial]
			switch typ {
			case unix.AUDIT_LANDLOCK_ACCESS:
				if !strings.HasPrefix(fields["blockers"], "fs.") {
					continue
				}
				if ev == nil {
					ev = &auditEvent{}
					pending[serial] = ev
				}
				ev.seen = now
				ev.denials = append(ev.denials, fsDenial{Domain: fields["domain"], Blockers: fields["blockers"], Path: auditString(fields["path"])})
			case unix.AUDIT_SYSCALL:
				if ev != nil {
					ev.syscall = fields
				}
			case unix.AUDIT_EOE:
				if ev != nil {
					flush(serial, ev)
				}
			}
		}
	}
	return nil
}

// parseAuditRecord splits "audit(1795751780.350:4): k=v k=v" into the
// serial ("1795751780.350:4") and the fields.
func parseAuditRecord(s string) (string, map[string]string) {
	rest, ok := strings.CutPrefix(s, "audit(")
	if !ok {
		return "", nil
	}
	serial, rest, ok := strings.Cut(rest, "): ")
	if !ok || serial == "" {
		return "", nil
	}
	fields := map[string]string{}
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " ")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		if strings.HasPrefix(v, "\"") {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				fields[k], rest = v, ""
				break
			}
			fields[k], rest = v[:end+2], v[end+2:]
			continue
		}
		val, r, _ := strings.Cut(v, " ")
		fields[k], rest = val, r
	}
	return serial, fields
}

// auditString decodes an audit string field: quoted, or hex when it holds
// characters audit does not print as they are.
func auditString(v string) string {
	if strings.HasPrefix(v, "\"") && strings.HasSuffix(v, "\"") && len(v) >= 2 {
		return v[1 : len(v)-1]
	}
	if v == "(null)" {
		return ""
	}
	if b, err := hex.DecodeString(v); err == nil {
		return string(b)
	}
	return v
}

// nsInode returns the inode of a process's namespace of the given kind
// ("mnt", "pid"), 0 when it cannot be read.
func nsInode(pid int, kind string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), &st); err != nil {
		return 0
	}
	return st.Ino
}
