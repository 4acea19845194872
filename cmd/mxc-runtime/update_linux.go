package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/docker/go-units"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

var updateCommand = cli.Command{
	Name:      "update",
	Usage:     "update a container's resource limits (never above its agent policy)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "file with a runtime-spec LinuxResources JSON document, or - for stdin (other flags are then ignored)"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CFS period (µs)"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CFS quota (µs)"},
		&cli.StringFlag{Name: "cpu-burst", Usage: "CFS burst (µs)"},
		&cli.StringFlag{Name: "cpu-share", Usage: "CPU shares"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "realtime period (µs)"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "realtime runtime (µs)"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (bytes, or with a unit: 512m)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory+swap limit; -1 for unlimited swap"},
		&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of pids"},
	},
	Action: oneID(func(c *cli.Context, id string) error {
		res, err := updateResources(c)
		if err != nil {
			return err
		}
		rt, err := newRuntime(c)
		if err != nil {
			return err
		}
		return rt.Update(id, res)
	}),
}

func updateResources(c *cli.Context) (*specs.LinuxResources, error) {
	var r specs.LinuxResources
	if in := c.String("resources"); in != "" {
		var rd io.Reader = os.Stdin
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, fmt.Errorf("--resources: %w", err)
			}
			defer f.Close()
			rd = f
		}
		if err := json.NewDecoder(rd).Decode(&r); err != nil {
			return nil, fmt.Errorf("--resources: invalid JSON: %w", err)
		}
		return &r, nil
	}
	r.CPU, r.Memory, r.Pids = &specs.LinuxCPU{}, &specs.LinuxMemory{}, &specs.LinuxPids{}
	u := func(name string, dst **uint64) error {
		if v := c.String(name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("--%s %q: %w", name, v, err)
			}
			*dst = &n
		}
		return nil
	}
	i := func(name string, dst **int64, bytes bool) error {
		v := c.String(name)
		if v == "" {
			return nil
		}
		var n int64
		var err error
		switch {
		case v == "-1":
			n = -1
		case bytes:
			n, err = units.RAMInBytes(v)
		default:
			n, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return fmt.Errorf("--%s %q: %w", name, v, err)
		}
		*dst = &n
		return nil
	}
	for _, e := range []error{
		u("cpu-period", &r.CPU.Period), u("cpu-share", &r.CPU.Shares), u("cpu-burst", &r.CPU.Burst), u("cpu-rt-period", &r.CPU.RealtimePeriod),
		i("cpu-quota", &r.CPU.Quota, false), i("cpu-rt-runtime", &r.CPU.RealtimeRuntime, false),
		i("memory", &r.Memory.Limit, true), i("memory-reservation", &r.Memory.Reservation, true), i("memory-swap", &r.Memory.Swap, true),
	} {
		if e != nil {
			return nil, e
		}
	}
	r.CPU.Cpus, r.CPU.Mems = c.String("cpuset-cpus"), c.String("cpuset-mems")
	if c.IsSet("pids-limit") {
		n := int64(c.Int("pids-limit"))
		r.Pids.Limit = &n
	}
	if c.IsSet("blkio-weight") {
		w := uint16(c.Int("blkio-weight"))
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return &r, nil
}

func init() { register(&updateCommand) }
