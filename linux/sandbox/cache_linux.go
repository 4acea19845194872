//go:build linux

package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/spec"
)

// The plan cache: what lets `sandbox` run without starting Go.
//
// A root caller's sandbox whose plan needs no network helper (loopback
// only, or the host's network) is written here once compiled, as a record
// file (agentexec's format) named after its key:
//
//	key = SHA-256("mxc-sandbox-plan-v1\npolicy <sha256 of the policy file>\n" +
//	              "node <sha256 of the node config, or none>\nexe <binary identity>\n")
//
// The binary identity is /proc/self/exe's device, inode, size, mtime and
// ctime: a rebuilt or reinstalled mxc-runtime gets new keys. The C half
// (package fastexec, sandbox.c) computes the same key before the Go
// runtime starts and, when a plan is there, owned by root and writable by
// no one else (nor any directory above it), runs it; anything else runs
// the Go path, which writes the plan. An edited policy or node config is a
// new key, so a new compilation; a plan made for another Landlock ABI is
// not used (the Go path then rewrites it).

// PlanDir holds the cached plans.
const PlanDir = DefaultStateRoot + "/plans"

// maxPlans bounds the cache; beyond it the oldest plans go.
const maxPlans = 256

// FastMode is MXC_SANDBOX_FAST: "0" (off, false, no) disables the cache
// (nothing written, the C path not taken), "require" makes a sandbox the
// C path cannot run fail (tests, benchmarks); anything else is the default.
func FastMode() string {
	switch m := os.Getenv("MXC_SANDBOX_FAST"); m {
	case "0", "off", "false", "no":
		return "off"
	case "require":
		return m
	}
	return ""
}

// BinaryIdentity is the running binary's identity in the key.
func BinaryIdentity() (string, error) { return IdentityOf("/proc/self/exe") }

// IdentityOf is the identity of the mxc-runtime binary at path.
func IdentityOf(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	return fmt.Sprintf("%d:%d:%d:%d.%09d:%d.%09d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec), nil
}

// PlanKey is the cache key of a plan compiled from policy (the policy
// file's bytes) and node (the node config's bytes; nil: none) by this
// binary.
func PlanKey(policy, node []byte) ([32]byte, error) {
	id, err := BinaryIdentity()
	if err != nil {
		return [32]byte{}, err
	}
	return PlanKeyWith(policy, node, id), nil
}

// PlanKeyWith is PlanKey for the binary identity exeID.
func PlanKeyWith(policy, node []byte, exeID string) [32]byte {
	ph := sha256.Sum256(policy)
	nh := "none"
	if node != nil {
		h := sha256.Sum256(node)
		nh = hex.EncodeToString(h[:])
	}
	return sha256.Sum256([]byte("mxc-sandbox-plan-v1\npolicy " + hex.EncodeToString(ph[:]) + "\nnode " + nh + "\nexe " + exeID + "\n"))
}

// capMask is boundCaps's set of kept capabilities, by number.
func capMask(caps []string) uint64 {
	keep := map[string]bool{}
	for _, c := range caps {
		keep[strings.ToUpper(c)] = true
	}
	var m uint64
	for name := range keep {
		if i := spec.CapabilityNumber(name); i >= 0 {
			m |= 1 << i
		}
	}
	return m
}

// EncodePlan renders pl for the C path, or an error when the C path could
// not run it exactly as Run would (a networked sandbox, a last step the C
// step cannot take).
func EncodePlan(key [32]byte, pl *Plan) ([]byte, error) {
	if pl.Egress {
		return nil, errors.New("a networked sandbox runs in Go")
	}
	w := agentexec.NewRecords(agentexec.SandboxMagic)
	if err := agentexec.AppendStep(w, &pl.Agent, false); err != nil {
		return nil, err
	}
	w.Add(agentexec.RecSBKey, key[:])
	var flags uint32
	if pl.HostNet {
		flags |= agentexec.SBHostNet
	}
	w.Add(agentexec.RecSBFlags, agentexec.U32(flags), agentexec.U32(0), agentexec.U64(capMask(pl.Caps)))
	for _, list := range []struct {
		typ   uint32
		paths []string
	}{{agentexec.RecSBRW, pl.ReadWrite}, {agentexec.RecSBDeny, pl.Denied}} {
		for _, p := range list.paths {
			if p == "" || strings.IndexByte(p, 0) >= 0 {
				return nil, fmt.Errorf("path %q", p)
			}
			w.Add(list.typ, []byte(p))
		}
	}
	return w.Bytes(), nil
}

// trustedDir reports whether path is a directory (not a symlink) owned by
// root and writable by no one else: what the C path requires of every
// directory from / to PlanDir.
func trustedDir(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is not a directory of root's that only root may write", path)
	}
	return nil
}

// trustedPlan reports whether the file at path is one the C path would
// read: a regular file (not a symlink) of root's, with one link, that only
// root may write.
func trustedPlan(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Uid == 0 && st.Mode&0o022 == 0 && st.Nlink == 1
}

// SavePlan caches pl under key, atomically, for the next sandbox of the
// same policy. Root only; a cache directory someone else could write is
// left alone (the C path would not trust it either).
func SavePlan(key [32]byte, pl *Plan) error {
	return savePlan(PlanDir, key, pl)
}

func savePlan(dir string, key [32]byte, pl *Plan) error {
	if os.Geteuid() != 0 {
		return errors.New("only root caches sandbox plans")
	}
	data, err := EncodePlan(key, pl)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("plan cache: %w", err)
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := trustedDir(d); err != nil {
			return fmt.Errorf("plan cache: %w", err)
		}
		if d == "/" {
			break
		}
	}
	final := filepath.Join(dir, hex.EncodeToString(key[:]))
	if trustedPlan(final) {
		if old, err := os.ReadFile(final); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("plan cache: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("plan cache: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("plan cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plan cache: %w", err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return fmt.Errorf("plan cache: %w", err)
	}
	prunePlans(dir)
	return nil
}

// prunePlans keeps the cache at most maxPlans plans (the newest) and drops
// temporary files a killed writer left.
func prunePlans(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type plan struct {
		name string
		mod  time.Time
	}
	var plans []plan
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if time.Since(fi.ModTime()) > time.Minute {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		plans = append(plans, plan{e.Name(), fi.ModTime()})
	}
	if len(plans) <= maxPlans {
		return
	}
	sort.Slice(plans, func(i, j int) bool { return plans[i].mod.After(plans[j].mod) })
	for _, p := range plans[maxPlans*3/4:] {
		_ = os.Remove(filepath.Join(dir, p.name))
	}
}
