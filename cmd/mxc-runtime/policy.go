package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"mxc.dev/mxc/spec"
)

// policyStateFile is where the runtime stores a container's effective
// policy (exactly the JSON of spec.Effective), under <root>/<id>/.
const policyStateFile = spec.EffectiveFile

var policyCommand = cli.Command{
	Name:  "policy",
	Usage: "validate, explain and convert agent policies",
	Description: `Agent policies (mxc.dev/v1alpha1 AgentPolicy, YAML or JSON, or MXC 1.0.0
JSON requests) say what an agent may read, write, reach and consume. See
docs/policy.md.`,
	Subcommands: []*cli.Command{
		{
			Name:      "validate",
			Usage:     "check policy files (or node configs with --node-config); exit 1 listing every error",
			ArgsUsage: "FILE...",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "node-config", Usage: "the files are node configs (/etc/mxc/config.yaml), not policies"},
			},
			Action: policyValidate,
		},
		{
			Name:      "explain",
			Usage:     "say in plain words what a policy lets the agent do, after the node's default and ceiling",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "no-node-config", Usage: "ignore the node config (--config): explain the policy alone"},
			},
			Action: policyExplain,
		},
		{
			Name:      "annotate",
			Usage:     "print the annotations that carry a policy (podman --annotation, pod metadata, config.json)",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Value: "text", Usage: "text (key=value lines), json (an object to merge into config.json annotations) or yaml (pod metadata.annotations)"},
			},
			Action: policyAnnotate,
		},
		{
			Name:   "schema",
			Usage:  "print the JSON Schema of AgentPolicy v1alpha1",
			Action: policySchema,
		},
		{
			Name:      "show",
			Usage:     "print the effective policy stored with a container",
			ArgsUsage: "ID",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Value: "json", Usage: "json (the stored effective policy) or text (explained)"},
			},
			Action: policyShow,
		},
	},
}

func init() { register(&policyCommand) }

// policyFileError lists every problem of one file, one a line, prefixed
// with the file name so that several files can be checked at once.
func printPolicyErrors(w io.Writer, file string, err error) {
	for _, e := range spec.Errors(err) {
		fmt.Fprintf(w, "%s: %v\n", file, e)
	}
}

func policyValidate(c *cli.Context) error {
	if err := checkArgs(c, 1, false); err != nil {
		return err
	}
	failed := 0
	for _, file := range c.Args().Slice() {
		data, err := os.ReadFile(file)
		if err == nil {
			if c.Bool("node-config") {
				_, err = spec.ParseNodeConfig(data)
			} else {
				var notes []string
				_, notes, err = spec.ParsePolicy(data)
				for _, n := range notes {
					fmt.Fprintf(c.App.ErrWriter, "%s: note: %s\n", file, n)
				}
			}
		}
		if err != nil {
			printPolicyErrors(c.App.ErrWriter, file, err)
			failed++
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s: ok\n", file)
	}
	if failed > 0 {
		return exitStatus(1)
	}
	return nil
}

func readPolicyFile(file string) (*spec.AgentPolicy, []string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	return spec.ParsePolicy(data)
}

// policyNodeConfig reads the node config named by the global --config flag
// (or MXC_CONFIG). A missing file at the default path means no config; a
// missing file the user named is an error.
func policyNodeConfig(c *cli.Context) (*spec.NodeConfig, error) {
	path := c.String("config")
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !c.IsSet("config") {
			return nil, nil
		}
		return nil, fmt.Errorf("node config: %w", err)
	}
	nc, err := spec.ParseNodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("node config %s: %w", path, err)
	}
	return nc, nil
}

func policyExplain(c *cli.Context) error {
	if err := checkArgs(c, 1, true); err != nil {
		return err
	}
	file := c.Args().First()
	p, notes, err := readPolicyFile(file)
	if err != nil {
		printPolicyErrors(c.App.ErrWriter, file, err)
		return exitStatus(1)
	}
	var node *spec.NodeConfig
	sources := []string{"file " + file}
	if !c.Bool("no-node-config") {
		if node, err = policyNodeConfig(c); err != nil {
			return err
		}
	}
	eff, err := spec.NewEffective(p, node, sources, notes)
	if err != nil {
		printPolicyErrors(c.App.ErrWriter, file, err)
		return exitStatus(1)
	}
	fmt.Fprint(c.App.Writer, spec.Explain(eff))
	return nil
}

func policyAnnotate(c *cli.Context) error {
	if err := checkArgs(c, 1, true); err != nil {
		return err
	}
	file := c.Args().First()
	p, notes, err := readPolicyFile(file)
	if err != nil {
		printPolicyErrors(c.App.ErrWriter, file, err)
		return exitStatus(1)
	}
	for _, n := range notes {
		fmt.Fprintf(c.App.ErrWriter, "%s: note: %s\n", file, n)
	}
	ann, err := spec.Annotations(p)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	switch f := c.String("format"); f {
	case "text":
		keys := make([]string, 0, len(ann))
		for k := range ann {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(c.App.Writer, "%s=%s\n", k, ann[k])
		}
	case "json":
		b, err := json.MarshalIndent(ann, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s\n", b)
	case "yaml":
		b, err := yaml.Marshal(ann)
		if err != nil {
			return err
		}
		fmt.Fprint(c.App.Writer, string(b))
	default:
		return usageError{fmt.Sprintf("invalid --format %q: want text, json or yaml", f)}
	}
	return nil
}

func policySchema(c *cli.Context) error {
	if err := checkArgs(c, 0, true); err != nil {
		return err
	}
	_, err := c.App.Writer.Write(spec.JSONSchema())
	return err
}

func policyShow(c *cli.Context) error {
	if err := checkArgs(c, 1, true); err != nil {
		return err
	}
	id, err := containerID(c)
	if err != nil {
		return err
	}
	root := c.String("root")
	dir := filepath.Join(root, id)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("container %s does not exist", id)
	}
	data, err := os.ReadFile(filepath.Join(dir, policyStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("container %s has no agent policy (it runs as a plain OCI container)", id)
	}
	if err != nil {
		return fmt.Errorf("read policy of %s: %w", id, err)
	}
	eff, err := spec.ParseEffective(data)
	if err != nil {
		return fmt.Errorf("stored policy of %s is corrupt: %w", id, err)
	}
	switch f := c.String("format"); f {
	case "json":
		b, err := json.MarshalIndent(eff, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s\n", b)
	case "text":
		fmt.Fprint(c.App.Writer, spec.Explain(eff))
	default:
		return usageError{fmt.Sprintf("invalid --format %q: want json or text", f)}
	}
	return nil
}
