package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

var psCommand = cli.Command{
	Name:      "ps",
	Usage:     "show the processes of a container",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
	},
	Action: oneID(func(c *cli.Context, id string) error {
		format := c.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("invalid --format %q: want table or json", format)
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		procs, err := rt.Ps(id)
		if err != nil {
			return err
		}
		if format == "json" {
			pids := make([]int, 0, len(procs))
			for _, p := range procs {
				pids = append(pids, int(p.ProcessId))
			}
			return json.NewEncoder(c.App.Writer).Encode(pids)
		}
		w := tabwriter.NewWriter(c.App.Writer, 8, 1, 3, ' ', 0)
		fmt.Fprint(w, "PID\tIMAGE\tCPU(100ns)\tPRIVATE WORKING SET\n")
		for _, p := range procs {
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\n", p.ProcessId, p.ImageName, p.KernelTime100ns+p.UserTime100ns, p.MemoryWorkingSetPrivateBytes)
		}
		return w.Flush()
	}),
}

func init() { register(&psCommand) }
