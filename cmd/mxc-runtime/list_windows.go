package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

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
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		list, err := rt.List()
		if err != nil {
			return err
		}
		out := c.App.Writer
		if c.Bool("quiet") {
			for _, s := range list {
				fmt.Fprintln(out, s.ID)
			}
			return nil
		}
		if format == "json" {
			if list == nil {
				fmt.Fprintln(out, "null")
				return nil
			}
			return json.NewEncoder(out).Encode(list)
		}
		w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	},
}

func init() { register(&listCommand) }
