package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamples: every example policy is valid, resolves under the example
// node config, and survives ApplyToOCI on a typical spec.
func TestExamples(t *testing.T) {
	nodeData, err := os.ReadFile("../examples/policies/node/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	node, err := ParseNodeConfig(nodeData)
	if err != nil {
		t.Fatalf("node config: %v", err)
	}
	files, _ := filepath.Glob("../examples/policies/*")
	want := map[string]bool{"coding-agent.yaml": false, "browsing-agent.yaml": false, "data-agent.yaml": false, "offline-agent.yaml": false, "mxc-1.0.0.json": false}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, notes, err := ParsePolicy(data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, ".json") != (len(notes) > 0) {
				t.Errorf("notes: %v", notes)
			}
			want[name] = true
			for _, n := range []*NodeConfig{nil, node} {
				eff, err := NewEffective(p, n, []string{"file " + name}, notes)
				if err != nil {
					if n == nil && strings.Contains(err.Error(), "no node config") {
						continue
					}
					t.Fatalf("node %v: %v", n != nil, err)
				}
				s := baseSpec()
				s.Mounts = s.Mounts[:1] // keep /proc only: the examples name their own trees
				if err := ApplyToOCI(s, eff); err != nil {
					t.Errorf("ApplyToOCI: %v", err)
				}
				if Explain(eff) == "" {
					t.Error("empty explanation")
				}
			}
			ann, err := Annotations(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Resolve(ann, node, nil); err != nil {
				t.Errorf("resolve through annotations: %v", err)
			}
		})
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("example %s missing", n)
		}
	}
}
