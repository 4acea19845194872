package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/container"
)

// newRuntime builds the Linux driver from the global flags.
func newRuntime(c *cli.Context) (*container.Runtime, error) {
	root, err := rootDir(c)
	if err != nil {
		return nil, err
	}
	if c.Bool("systemd-cgroup") {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return nil, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver")
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	rt := &container.Runtime{Root: root, SystemdCgroup: c.Bool("systemd-cgroup"), Exe: exe}
	engine, err := newPolicyEngine(c, rt)
	if err != nil {
		return nil, err
	}
	if engine != nil {
		rt.Policy = engine
	}
	return rt, nil
}

func rootDir(c *cli.Context) (string, error) {
	root, err := filepath.Abs(c.String("root"))
	if err != nil {
		return "", err
	}
	if root == "/" {
		return "", errors.New("--root must not be /")
	}
	return root, nil
}
