//go:build windows

package hcs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mxc.dev/mxc/spec"
)

// This file is the driver's one contact with policy resolution: spec owns
// the semantics (spec.ParseNodeConfig, spec.Resolve); the driver only reads
// the files spec asks for, since spec does no I/O.

// DefaultConfigPath is the node config on Windows, beside the state root.
func DefaultConfigPath() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "mxc", "config.yaml")
}

// LoadNodeConfig reads and parses the node config. A missing file means no
// node config (nil) unless the caller named the file explicitly.
func LoadNodeConfig(path string, explicit bool) (*spec.NodeConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	node, err := spec.ParseNodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("node config %s: %w", path, err)
	}
	return node, nil
}

// ResolvePolicy computes the container's effective policy from its
// annotations and the node config; (nil, nil) when no policy applies.
func ResolvePolicy(annotations map[string]string, node *spec.NodeConfig) (*spec.Effective, error) {
	eff, err := spec.Resolve(annotations, node, policyLoader(node))
	if err != nil {
		return nil, fmt.Errorf("agent policy: %w", err)
	}
	return eff, nil
}

// policyLoader reads named policies from the node's policyDir as
// <name>.yaml, <name>.yml or <name>.json.
func policyLoader(node *spec.NodeConfig) spec.PolicyLoader {
	if node == nil || node.PolicyDir == "" {
		return nil
	}
	dir := node.PolicyDir
	return func(name string) ([]byte, error) {
		if name == "" || strings.ContainsAny(name, `/\:`) || strings.Contains(name, "..") {
			return nil, fmt.Errorf("policy name %q: must be a plain file name: %w", name, fs.ErrNotExist)
		}
		for _, ext := range []string{".yaml", ".yml", ".json"} {
			b, err := os.ReadFile(filepath.Join(dir, name+ext))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return nil, fmt.Errorf("policy %q not found in %s: %w", name, dir, fs.ErrNotExist)
	}
}
