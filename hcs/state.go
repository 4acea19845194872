package hcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/internal/statefile"
	"mxc.dev/mxc/spec"
)

// State layout under --root, one directory per container (as on Linux):
//
//	<root>/<id>/mxc.json     Record: what create did, for every later verb and for undo
//	<root>/<id>/policy.json  the effective policy (spec.Effective), when one applies
//	<root>/<id>/shim.pid     pid of the container's shim (holds stdio, waits on init)
//	<root>/<id>/init.pid     pid of the init process inside the container
//	<root>/<id>/exit.json    Exit: how the init process ended
//	<root>/<id>/audit.jsonl  audit events
const (
	RecordFile  = "mxc.json"
	PolicyFile  = "policy.json"
	ShimPidFile = "shim.pid"
	InitPidFile = "init.pid"
	ExitFile    = "exit.json"
)

// Phases of a Record.
const (
	PhaseCreating = "creating" // journal written; create under way (delete undoes it)
	PhaseCreated  = "created"
)

// ErrNotExist is returned for a container id with no state.
var ErrNotExist = errors.New("container does not exist")

// Record is mxc's per-container record on Windows. It is written before each
// side effect of create, so that a create killed at any point can be undone
// by delete.
type Record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Phase       string            `json:"phase"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	OCIVersion  string            `json:"ociVersion"`
	Rootfs      string            `json:"rootfs,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// UniqueID names the shim's control pipe (a fresh one per create, so a
	// stale shim of an earlier container with the same id is never reached).
	UniqueID string `json:"uniqueID"`
	// Result is the translation, as sent to HCS (layer IDs and VolumePath filled in).
	Result *Result `json:"result"`
	// Process is the spec's init process, the base of exec's defaults.
	Process *specs.Process `json:"process,omitempty"`
	// Policy facts, empty when no policy applies.
	PolicyDigest string `json:"policyDigest,omitempty"`
	Agent        string `json:"agent,omitempty"`
	Tier         string `json:"tier,omitempty"`
	// Undo journal: set before the side effect is attempted.
	ScratchMounted bool     `json:"scratchMounted,omitempty"`
	HCSCreated     bool     `json:"hcsCreated,omitempty"`
	ACLEndpoints   []string `json:"aclEndpoints,omitempty"`
}

// Exit records how the init process ended.
type Exit struct {
	Code   int       `json:"code"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"` // "exited", "timeout", "container stopped"
}

// ContainerState is what `state` and `list --format json` print: the OCI
// state fields plus runc's created and owner, and mxc's isolation and policy.
type ContainerState struct {
	OCIVersion   string            `json:"ociVersion"`
	ID           string            `json:"id"`
	Pid          int               `json:"pid"`
	Status       string            `json:"status"`
	Bundle       string            `json:"bundle"`
	Rootfs       string            `json:"rootfs"`
	Created      time.Time         `json:"created"`
	Owner        string            `json:"owner"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Isolation    Isolation         `json:"isolation,omitempty"`
	PolicyDigest string            `json:"policyDigest,omitempty"`
}

// StateDir is the directory of container id under root.
func StateDir(root, id string) string { return filepath.Join(root, id) }

// ShimPipePath is the shim's control pipe. Administrators' protected prefix
// (as runhcs uses) keeps a non-admin process from squatting on the name.
func ShimPipePath(uniqueID string) string {
	return `\\.\pipe\ProtectedPrefix\Administrators\mxc-shim-` + uniqueID
}

// ShimSuccess is what a shim writes on its error channel when an operation
// succeeded (runhcs's protocol: anything else is the error text).
var ShimSuccess = []byte{0, 'O', 'K', 0}

// WriteJSONAtomic writes v to path atomically (see statefile.WriteJSON).
func WriteJSONAtomic(path string, v any) error { return statefile.WriteJSON(path, v) }

// SaveRecord writes mxc.json.
func SaveRecord(dir string, r *Record) error {
	if err := WriteJSONAtomic(filepath.Join(dir, RecordFile), r); err != nil {
		return fmt.Errorf("save container record: %w", err)
	}
	return nil
}

// LoadRecord reads mxc.json; ErrNotExist when there is none.
func LoadRecord(dir string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotExist
	} else if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", RecordFile, err)
	}
	if r.Result == nil || r.Result.Config == nil {
		return nil, fmt.Errorf("parse %s: no translation recorded", RecordFile)
	}
	return &r, nil
}

// SavePolicy stores the effective policy as policy.json, exactly the
// spec.Effective document (as the Linux driver stores it).
func SavePolicy(dir string, eff *spec.Effective) error { return statefile.SavePolicy(dir, eff) }

// LoadPolicy reads policy.json; (nil, nil) when the container has no policy.
func LoadPolicy(dir string) (*spec.Effective, error) { return statefile.LoadPolicy(dir) }

// WritePid writes a pid file atomically.
func WritePid(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadPid reads a pid file; 0 when it does not exist.
func ReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pid, nil
}

// LoadExit reads exit.json; nil when the init process has not ended.
func LoadExit(dir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ExitFile, err)
	}
	return &e, nil
}
