//go:build linux

package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigFile is the OCI bundle's configuration file name.
const ConfigFile = "config.json"

// LoadSpec reads and validates BUNDLE/config.json. Errors name the file and
// the JSON path at fault ("config.json: process.args: ...").
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s: %s not found", bundle, ConfigFile)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := DecodeSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ValidateSpec(s, bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// DecodeSpec parses a config.json document; errors carry the JSON path or
// the line and column of a syntax error.
func DecodeSpec(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, jsonError(data, err)
	}
	return &s, nil
}

func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(document)"
		}
		return fmt.Errorf("%s: cannot use a JSON %s as %s", jsonPath(field), te.Value, te.Type)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// jsonPath turns encoding/json's Go-field path into the JSON names users see;
// runtime-spec's JSON names already match the struct's lower-case path.
func jsonPath(field string) string { return field }

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// ValidateSpec checks what runc checks before creating, naming the JSON path.
func ValidateSpec(s *specs.Spec, bundle string) error {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if s.Version == "" {
		add("ociVersion", "must be set")
	}
	if s.Root == nil || s.Root.Path == "" {
		add("root.path", "must be set")
	} else {
		rootfs := s.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(bundle, rootfs)
		}
		if fi, err := os.Stat(rootfs); err != nil {
			add("root.path", "rootfs %s does not exist", rootfs)
		} else if !fi.IsDir() {
			add("root.path", "rootfs %s is not a directory", rootfs)
		}
	}
	if s.Process == nil {
		add("process", "must be set")
	} else {
		errs = append(errs, validateProcess(s.Process, "process")...)
	}
	if s.Linux == nil {
		add("linux", "must be set on Linux")
	}
	return errors.Join(errs...)
}

func validateProcess(p *specs.Process, at string) []error {
	var errs []error
	if len(p.Args) == 0 && p.CommandLine == "" {
		errs = append(errs, fmt.Errorf("%s.args: must not be empty", at))
	}
	if p.Cwd == "" {
		errs = append(errs, fmt.Errorf("%s.cwd: must be set", at))
	} else if !filepath.IsAbs(p.Cwd) {
		errs = append(errs, fmt.Errorf("%s.cwd: %q must be an absolute path", at, p.Cwd))
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			errs = append(errs, fmt.Errorf("%s.env[%d]: %q is not KEY=VALUE", at, i, e))
		}
	}
	return errs
}

// ValidateProcess checks a process document (exec --process).
func ValidateProcess(p *specs.Process) error {
	return errors.Join(validateProcess(p, "process")...)
}
