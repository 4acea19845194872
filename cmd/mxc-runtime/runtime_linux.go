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

func killContainer(c *cli.Context, id, raw string, all bool) error {
	sig, err := container.ParseSignal(raw)
	if err != nil {
		return err
	}
	rt, err := newRuntime(c)
	if err != nil {
		return err
	}
	return rt.Kill(id, sig, all)
}

// listContainers returns the table rows and the value `list --format json`
// prints (runc's list format).
func listContainers(c *cli.Context) ([]listRow, any, error) {
	rt, err := newRuntime(c)
	if err != nil {
		return nil, nil, err
	}
	list, err := rt.List()
	if err != nil {
		return nil, nil, err
	}
	rows := make([]listRow, 0, len(list))
	for _, s := range list {
		rows = append(rows, listRow{ID: s.ID, Pid: s.InitProcessPid, Status: s.Status, Bundle: s.Bundle, Created: s.Created, Owner: s.Owner})
	}
	return rows, list, nil
}
