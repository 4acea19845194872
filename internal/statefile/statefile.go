// Package statefile reads and writes the files both drivers keep in a
// container's state dir: JSON records written atomically, and the effective
// agent policy (policy.json), which is the same document on Linux and Windows.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"mxc.dev/mxc/spec"
)

// WriteJSON writes v to path through a temporary file and a rename, so a
// reader (or a crash) never sees half a record.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// SavePolicy stores the effective policy in dir as spec.EffectiveFile.
func SavePolicy(dir string, eff *spec.Effective) error {
	if err := WriteJSON(filepath.Join(dir, spec.EffectiveFile), eff); err != nil {
		return fmt.Errorf("save effective policy: %w", err)
	}
	return nil
}

// LoadPolicy reads the effective policy of the container whose state dir is
// dir; (nil, nil) when the container has none. The document is checked
// strictly and against its digest, so an edited policy.json is refused
// rather than enforced.
func LoadPolicy(dir string) (*spec.Effective, error) {
	b, err := os.ReadFile(filepath.Join(dir, spec.EffectiveFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	eff, err := spec.ParseEffective(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.EffectiveFile, err)
	}
	return eff, nil
}
