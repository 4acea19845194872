package main

import "github.com/urfave/cli/v2"

// oneID is the action of a verb that takes exactly one container id: it
// checks the arguments, validates the id, and hands it to run.
func oneID(run func(c *cli.Context, id string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := checkArgs(c, 1, true); err != nil {
			return err
		}
		id, err := containerID(c)
		if err != nil {
			return err
		}
		return run(c, id)
	}
}
