package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"mxc.dev/mxc/spec"
)

// runPolicyCLI runs the app in-process and returns stdout, stderr and the
// error the verb returned (fatal is not involved).
func runPolicyCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"mxc-runtime"}, args...))
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

const examples = "../../examples/policies/"

func TestPolicyValidate(t *testing.T) {
	out, _, err := runPolicyCLI(t, "policy", "validate", examples+"coding-agent.yaml", examples+"mxc-1.0.0.json")
	if err != nil || !strings.Contains(out, "coding-agent.yaml: ok") || !strings.Contains(out, "mxc-1.0.0.json: ok") {
		t.Fatalf("valid files: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\nnetwork: {egress: {allow: [{ports: [{port: 1, endPort: 70000}]}]}}\nmode: loud\n"), 0o644)
	out, errOut, err := runPolicyCLI(t, "policy", "validate", examples+"data-agent.yaml", bad)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1", exitCode(err))
	}
	for _, w := range []string{
		bad + ": network.egress.allow[0].ports[0].endPort: 70000 is above 65535",
		bad + `: mode: "loud" is not a mode`,
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("missing %q in:\n%s", w, errOut)
		}
	}
	if !strings.Contains(out, "data-agent.yaml: ok") {
		t.Errorf("good file not reported: %s", out)
	}
	_, errOut, err = runPolicyCLI(t, "policy", "validate", "--node-config", examples+"node/config.yaml", examples+"coding-agent.yaml")
	if exitCode(err) != 1 || !strings.Contains(errOut, "coding-agent.yaml: apiVersion: unknown field") {
		t.Errorf("node config mode: %v %s", err, errOut)
	}
	if _, _, err := runPolicyCLI(t, "policy", "validate"); exitCode(err) != 1 {
		t.Error("no file accepted")
	}
}

func TestPolicyExplainAnnotateSchema(t *testing.T) {
	out, _, err := runPolicyCLI(t, "policy", "explain", "--no-node-config", examples+"coding-agent.yaml")
	if err != nil || !strings.Contains(out, "deny wins") || !strings.Contains(out, "api.openai.com, tcp/443") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	// With the example node config, its ceiling shows up.
	app := newApp()
	var buf bytes.Buffer
	app.Writer = &buf
	if err := app.Run([]string{"mxc-runtime", "--config", examples + "node/config.yaml", "policy", "explain", examples + "coding-agent.yaml"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "/etc/shadow") || !strings.Contains(buf.String(), "node ceiling") {
		t.Errorf("ceiling not applied:\n%s", buf.String())
	}
	// An explicitly named config that does not exist is an error.
	app = newApp()
	app.Writer, app.ErrWriter = &buf, &buf
	if err := app.Run([]string{"mxc-runtime", "--config", "/nonexistent/config.yaml", "policy", "explain", examples + "coding-agent.yaml"}); err == nil {
		t.Error("missing named config accepted")
	}

	for _, format := range []string{"text", "json", "yaml"} {
		out, _, err := runPolicyCLI(t, "policy", "annotate", "--format", format, examples+"browsing-agent.yaml")
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		ann := map[string]string{}
		switch format {
		case "text":
			k, v, _ := strings.Cut(strings.TrimSuffix(out, "\n"), "=")
			ann[k] = v
		case "json":
			err = json.Unmarshal([]byte(out), &ann)
		case "yaml":
			err = yaml.Unmarshal([]byte(out), &ann)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, out)
		}
		eff, err := spec.Resolve(ann, nil, nil)
		if err != nil || eff.Policy.Metadata.Name != "browsing-agent" {
			t.Errorf("%s: annotations do not resolve: %v\n%s", format, err, out)
		}
	}
	if _, _, err := runPolicyCLI(t, "policy", "annotate", "--format", "toml", examples+"browsing-agent.yaml"); err == nil {
		t.Error("bad format accepted")
	}

	out, _, err = runPolicyCLI(t, "policy", "schema")
	if err != nil || out != string(spec.JSONSchema()) {
		t.Errorf("schema: %v", err)
	}
	file, _ := os.ReadFile("../../docs/schema/agentpolicy.v1alpha1.json")
	if string(file) != out {
		t.Error("docs/schema/agentpolicy.v1alpha1.json differs from `policy schema`")
	}
}

func TestPolicyShow(t *testing.T) {
	root := t.TempDir()
	p, notes, err := spec.ParsePolicy([]byte("apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\nmetadata: {name: shown}\n"))
	if err != nil {
		t.Fatal(err)
	}
	eff, err := spec.NewEffective(p, nil, []string{"annotation io.mxc.policy"}, notes)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(eff)
	os.MkdirAll(filepath.Join(root, "c1"), 0o700)
	os.WriteFile(filepath.Join(root, "c1", policyStateFile), b, 0o600)
	os.MkdirAll(filepath.Join(root, "plain"), 0o700)

	show := func(args ...string) (string, error) {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run(append([]string{"mxc-runtime", "--root", root, "policy", "show"}, args...))
		return out.String(), err
	}
	out, err := show("c1")
	if err != nil {
		t.Fatal(err)
	}
	var got spec.Effective
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Digest != eff.Digest || got.Policy.Metadata.Name != "shown" {
		t.Errorf("show: %v\n%s", err, out)
	}
	if out, err := show("--format", "text", "c1"); err != nil || !strings.Contains(out, "Policy shown, digest "+eff.Digest) {
		t.Errorf("show text: %v\n%s", err, out)
	}
	if _, err := show("nosuch"); err == nil || !strings.Contains(err.Error(), "container nosuch does not exist") {
		t.Errorf("missing container: %v", err)
	}
	if _, err := show("plain"); err == nil || !strings.Contains(err.Error(), "has no agent policy") {
		t.Errorf("plain container: %v", err)
	}
	if _, err := show("../etc"); err == nil {
		t.Error("bad id accepted")
	}
}
