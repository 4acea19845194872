//go:build linux

package enforce

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

// maskDeniedFiles turns the masks of denied *files* into binds of
// /dev/null with nodev: opening the path then fails with EACCES for every
// process, root included (a device node on a nodev mount cannot be
// opened), where runc's maskedPaths (a plain /dev/null bind) would read as
// empty and swallow writes. The agent is told "permission denied", like
// for a path Landlock refuses.
//
// The file must exist in the bundle (the rootfs, or the host source of a
// bind mount), or the bind would create it: a path that is missing, a
// directory (masked by runc with an empty read-only tmpfs), or one that
// cannot be resolved keeps runc's masking.
func maskDeniedFiles(s *specs.Spec, eff *spec.Effective, bundle string) {
	if s.Root == nil || s.Linux == nil {
		return
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	denied := map[string]bool{}
	for _, r := range eff.FSRules() {
		if r.Access == spec.AccessDenied {
			denied[r.Path] = true
		}
	}
	var keep []string
	var binds []specs.Mount
	for _, p := range s.Linux.MaskedPaths {
		if !denied[path.Clean(p)] || !isRegularFile(hostPath(s, rootfs, bundle, path.Clean(p))) {
			keep = append(keep, p)
			continue
		}
		binds = append(binds, specs.Mount{
			Destination: p, Type: "bind", Source: "/dev/null",
			Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"},
		})
	}
	s.Linux.MaskedPaths = keep
	// Appended last: a mask goes over every mount below it.
	s.Mounts = append(s.Mounts, binds...)
}

// hostPath resolves a container path to where it lives on the host: in
// the source of the deepest bind mount above it, else in the rootfs; ""
// when it cannot tell (another kind of mount is on the way).
func hostPath(s *specs.Spec, rootfs, bundle, p string) string {
	best := -1
	for i, m := range s.Mounts {
		d := path.Clean(m.Destination)
		if d == p || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			if best < 0 || len(d) >= len(path.Clean(s.Mounts[best].Destination)) {
				best = i
			}
		}
	}
	if best < 0 {
		hp, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return ""
		}
		return hp
	}
	m := s.Mounts[best]
	if m.Type != "bind" && !hasOpt(m.Options, "bind") && !hasOpt(m.Options, "rbind") {
		return ""
	}
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(bundle, src)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.Destination)), "/")
	if rel == "" {
		return src
	}
	hp, err := securejoin.SecureJoin(src, rel)
	if err != nil {
		return ""
	}
	return hp
}

func isRegularFile(p string) bool {
	if p == "" {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}
