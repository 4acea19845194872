package hcs

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

// grant is one filesystem rule of the policy, normalized.
type grant struct {
	rule string // "filesystem.readwritePaths[2]"
	path winPath
	rw   bool
}

// mounts turns the spec's mounts into mapped directories and mapped pipes.
//
// With a filesystem policy, the policy decides what of the host the
// container sees: every mount must lie under a readonlyPaths or
// readwritePaths entry (the most specific entry decides its access), a
// mount under a read-only entry is mapped read-only whatever its options
// say, and nothing else is mapped. HCS v1 maps whole directories and cannot
// hide or protect a part of one, so a deniedPaths entry inside (or around) a
// mapping, or a read-only entry inside a writable mapping, is refused.
func (r *Result) mounts(s *specs.Spec, pol *spec.AgentPolicy, ann *annotations) error {
	var fs *spec.Filesystem
	if pol != nil {
		fs = pol.Filesystem
	}
	var grants, denied []grant
	if fs != nil {
		var err error
		if grants, err = collectGrants(fs.ReadwritePaths, "filesystem.readwritePaths", true, grants); err != nil {
			return err
		}
		if grants, err = collectGrants(fs.ReadonlyPaths, "filesystem.readonlyPaths", false, grants); err != nil {
			return err
		}
		if denied, err = collectGrants(fs.DeniedPaths, "filesystem.deniedPaths", false, nil); err != nil {
			return err
		}
	}
	mapped := make([]bool, len(grants))
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if m.Source == "" || m.Destination == "" {
			return fmt.Errorf("%s: a mount needs both source and destination", field)
		}
		switch m.Type {
		case "", "bind":
		default:
			return fmt.Errorf("%s: mount type %q is not supported with HCS schema v1 (only directory and named pipe mounts)", field, m.Type)
		}
		dest, err := normalizeWinPath(m.Destination)
		if err != nil {
			return fmt.Errorf("%s: destination: %w", field, err)
		}
		ro := hasOption(m.Options, "ro")
		srcPipe := strings.HasPrefix(strings.ToLower(m.Source), strings.ToLower(pipePrefix))
		if srcPipe != dest.isPipe() {
			return fmt.Errorf("%s: a named pipe can only be mapped onto a named pipe (source %q, destination %q)", field, m.Source, m.Destination)
		}
		if fs != nil {
			g, err := coveringGrant(field, m, dest, grants, denied)
			if err != nil {
				return err
			}
			if g >= 0 {
				mapped[g] = true
				if !grants[g].rw {
					if !ro {
						r.note("%s: %s mapped read-only, as %s (%s) says", field, m.Destination, grants[g].rule, grants[g].path)
					}
					ro = true
				}
			}
		}
		if dest.isPipe() {
			if ro {
				return fmt.Errorf("%s: named pipe %s cannot be mapped read-only (list it in filesystem.readwritePaths to allow it)", field, m.Destination)
			}
			r.Config.MappedPipes = append(r.Config.MappedPipes, MappedPipe{
				HostPath:          m.Source,
				ContainerPipeName: string(dest)[len(pipePrefix):],
			})
			continue
		}
		if !ro && ann.noWritableShares {
			return fmt.Errorf("%s: writable mapping of %s conflicts with annotation %s", field, m.Destination, ann.noWritableSharesKey)
		}
		r.Config.MappedDirectories = append(r.Config.MappedDirectories, MappedDir{
			HostPath:      m.Source,
			ContainerPath: m.Destination,
			ReadOnly:      ro,
		})
	}
	if fs == nil {
		return nil
	}
	for i, g := range grants {
		access := "read-only"
		if g.rw {
			access = "read-write"
		}
		if mapped[i] {
			r.enforce(fmt.Sprintf("%s %s", g.rule, g.path), "mapped directory ("+access+"); no other host directory is mapped")
			continue
		}
		// Not a host mapping: the path is in the container's own image, a
		// copy-on-write view private to this container. HCS v1 cannot make
		// part of it read-only; a write lands in the scratch layer and never
		// reaches the host or another container.
		mech := "container image (private copy-on-write layer); no host directory mapped"
		if !g.rw {
			mech += "; not read-only inside the container: writes go to its scratch layer, never to the host"
		}
		r.enforce(fmt.Sprintf("%s %s", g.rule, g.path), mech)
	}
	for _, d := range denied {
		r.enforce(fmt.Sprintf("%s %s", d.rule, d.path), "no host directory is mapped at or around it; image files there (if any) are the container's own copy")
	}
	r.enforce("filesystem (paths not listed)", "no host directory is mapped: the container sees only its image, its scratch layer and the mappings above")
	return nil
}

func collectGrants(paths []string, field string, rw bool, into []grant) ([]grant, error) {
	for i, p := range paths {
		rule := fmt.Sprintf("%s[%d]", field, i)
		wp, err := normalizeWinPath(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rule, err)
		}
		into = append(into, grant{rule: rule, path: wp, rw: rw})
	}
	return into, nil
}

// coveringGrant finds the policy entry that decides mount m at dest and
// checks that the mapping hides nothing the policy protects. It returns the
// index of the deciding grant.
func coveringGrant(field string, m specs.Mount, dest winPath, grants, denied []grant) (int, error) {
	for _, d := range denied {
		if d.path.within(dest) || dest.within(d.path) {
			return -1, fmt.Errorf("%s: %s is denied by %s, but the mapping of %s onto %s would expose it; HCS schema v1 cannot mask a path inside a mapped directory, so the container is refused",
				field, d.path, d.rule, m.Source, m.Destination)
		}
	}
	best := -1
	for i, g := range grants {
		if !dest.within(g.path) {
			continue
		}
		// The most specific entry decides; on a tie, read-only wins.
		if best < 0 || len(g.path) > len(grants[best].path) || len(g.path) == len(grants[best].path) && !g.rw {
			best = i
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("%s: %s (from %s) is not covered by filesystem.readonlyPaths or filesystem.readwritePaths; with a filesystem policy only listed paths may be mapped",
			field, m.Destination, m.Source)
	}
	ro := hasOption(m.Options, "ro") || !grants[best].rw
	if !ro {
		for _, g := range grants {
			if !g.rw && g.path.within(dest) && !g.path.equal(dest) {
				return -1, fmt.Errorf("%s: %s is read-only by %s but lies inside the writable mapping of %s; HCS schema v1 cannot make part of a mapped directory read-only, so the container is refused",
					field, g.path, g.rule, m.Destination)
			}
		}
	}
	return best, nil
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if strings.EqualFold(x, o) {
			return true
		}
	}
	return false
}
