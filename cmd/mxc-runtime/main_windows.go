package main

import "github.com/urfave/cli/v2"

// defaultRoot keeps state as runhcs does, under ProgramData.
const defaultRoot = `C:\ProgramData\mxc\state`

func beforeOS(*cli.Context) error { return nil }

func printVersionExtra(*cli.Context) {}
