package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/execsrv/fastexec"
	"mxc.dev/mxc/linux/landlock"
)

// Annotations mxc adds to the runtime-spec features document.
const (
	featLandlockABI = "io.mxc.landlock.abi"
	featVersion     = "io.mxc.version"
	featCommit      = "io.mxc.commit"
	featTiers       = "io.mxc.tiers"
	featLibc        = "io.mxc.libc"
)

var featuresCommand = cli.Command{
	Name:  "features",
	Usage: "print the runtime-spec features JSON (plus mxc's enforcement abilities)",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, true); err != nil {
			return err
		}
		t := true
		f := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: specs.Version,
			Hooks:         configs.KnownHookNames(),
			MountOptions:  specconv.KnownMountOptions(),
			Annotations: map[string]string{
				featVersion:     c.App.Version,
				featCommit:      gitCommit,
				featLandlockABI: strconv.Itoa(landlock.ABI()),
				featTiers:       "process,session",
				// checkpoint/restore is refused by design.
				"org.opencontainers.runc.checkpoint.enabled": "false",
			},
			Linux: &features.Linux{
				Namespaces:   specconv.KnownNamespaces(),
				Capabilities: capabilities.KnownCapabilities(),
				Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &t},
			},
			PotentiallyUnsafeConfigAnnotations: []string{"bundle", "org.systemd.property."},
		}
		if l := fastexec.Libc(); l != "" {
			f.Annotations[featLibc] = l
		}
		if seccomp.Enabled {
			f.Linux.Seccomp = &features.Seccomp{
				Enabled:        &t,
				Actions:        seccomp.KnownActions(),
				Operators:      seccomp.KnownOperators(),
				Archs:          seccomp.KnownArchs(),
				KnownFlags:     seccomp.KnownFlags(),
				SupportedFlags: seccomp.SupportedFlags(),
			}
			ma, mi, pa := seccomp.Version()
			f.Annotations["io.github.seccomp.libseccomp.version"] = fmt.Sprintf("%d.%d.%d", ma, mi, pa)
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "    ")
		return enc.Encode(f)
	},
}

func init() { register(&featuresCommand) }
