package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/urfave/cli/v2"
)

var specCommand = cli.Command{
	Name:  "spec",
	Usage: "write a starter config.json into the bundle",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "bundle directory (default: current directory)"},
		&cli.BoolFlag{Name: "rootless", Usage: "a config for a rootless container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, true); err != nil {
			return err
		}
		s := specconv.Example()
		if c.Bool("rootless") {
			specconv.ToRootless(s)
		}
		path := filepath.Join(c.String("bundle"), "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists: remove it first", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		b, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o666)
	},
}

func init() { register(&specCommand) }
