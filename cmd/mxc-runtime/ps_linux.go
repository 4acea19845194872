package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

var psCommand = cli.Command{
	Name:      "ps",
	Usage:     "show the processes of a container (ps options after the id)",
	ArgsUsage: "<container-id> [ps options]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, false); err != nil {
			return err
		}
		id, err := containerID(c)
		if err != nil {
			return err
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		pids, err := rt.Processes(id)
		if err != nil {
			return err
		}
		switch c.String("format") {
		case "json":
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(c.App.Writer).Encode(pids)
		case "table":
		default:
			return fmt.Errorf("invalid --format %q: want table or json", c.String("format"))
		}
		args := c.Args().Slice()[1:]
		if len(args) == 0 {
			args = []string{"-ef"}
		}
		out, err := exec.Command("ps", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ps %s: %w: %s", strings.Join(args, " "), err, out)
		}
		lines := strings.Split(string(out), "\n")
		col := slices.Index(strings.Fields(lines[0]), "PID")
		if col < 0 {
			return fmt.Errorf("ps output has no PID column")
		}
		fmt.Fprintln(c.App.Writer, lines[0])
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) <= col {
				continue
			}
			if p, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, p) {
				fmt.Fprintln(c.App.Writer, l)
			}
		}
		return nil
	},
}

func init() { register(&psCommand) }
