package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

// listRow is one line of `list`'s table; each OS maps its state to it.
type listRow struct {
	ID, Status, Bundle, Owner string
	Pid                       int
	Created                   time.Time
}

var listCommand = cli.Command{
	Name:  "list",
	Usage: "list the containers under --root",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only container ids"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, true); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("invalid --format %q: want table or json", format)
		}
		rows, states, err := listContainers(c)
		if err != nil {
			return err
		}
		out := c.App.Writer
		switch {
		case c.Bool("quiet"):
			for _, r := range rows {
				fmt.Fprintln(out, r.ID)
			}
			return nil
		case format == "json":
			// runc prints null for no containers; clients parse either.
			return json.NewEncoder(out).Encode(states)
		}
		w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Pid, r.Status, r.Bundle, r.Created.Format(time.RFC3339Nano), r.Owner)
		}
		return w.Flush()
	},
}

func init() { register(&listCommand) }
