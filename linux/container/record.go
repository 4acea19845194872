//go:build linux

package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mxc.dev/mxc/internal/statefile"
	"mxc.dev/mxc/spec"
)

const recordFile = "mxc.json"

// Record is mxc's per-container record (mxc.json). It is written before any
// side effect of create, so that a create killed at any point can be undone;
// whether create finished is libcontainer's state.json's to say (written
// last), so the record is not rewritten for that.
type Record struct {
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Created time.Time `json:"created"`
	// CgroupPaths are where the container's cgroups will be/were created.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// PolicyDigest is the digest of policy.json, empty when no policy applies.
	PolicyDigest string `json:"policyDigest,omitempty"`
	Agent        string `json:"agent,omitempty"`
	Tier         string `json:"tier,omitempty"`
	// Enforcement is what the Linux driver could apply and how.
	Enforcement *Enforcement `json:"enforcement,omitempty"`
	// HostNetNS is true when the container shares the host's netns.
	NetNSPath string `json:"netnsPath,omitempty"`
	// Egress is set when an egress filter was (being) set up.
	Egress bool `json:"egress,omitempty"`
	// Monitor is the pid of the per-container monitor helper, if any.
	MonitorPid int `json:"monitorPid,omitempty"`
}

// Enforcement records what the kernel enforces for this container.
type Enforcement struct {
	LandlockABI int      `json:"landlockABI,omitempty"`
	Seccomp     bool     `json:"seccomp,omitempty"`
	Degraded    []string `json:"degraded,omitempty"`
	UserNS      bool     `json:"userns,omitempty"`
	IDRange     string   `json:"idRange,omitempty"`
}

// SaveRecord writes mxc.json into the container's state dir.
func SaveRecord(stateDir string, r *Record) error {
	if err := statefile.WriteJSON(filepath.Join(stateDir, recordFile), r); err != nil {
		return fmt.Errorf("save mxc record: %w", err)
	}
	return nil
}

// LoadRecord reads mxc.json; (nil, nil) if there is none.
func LoadRecord(stateDir string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", recordFile, err)
	}
	return &r, nil
}

// SavePolicy stores the effective policy as policy.json.
func SavePolicy(stateDir string, eff *spec.Effective) error {
	return statefile.SavePolicy(stateDir, eff)
}

// LoadPolicy reads policy.json; (nil, nil) when the container has no policy.
func LoadPolicy(stateDir string) (*spec.Effective, error) { return statefile.LoadPolicy(stateDir) }
