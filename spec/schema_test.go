package spec

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"
)

const schemaFile = "../docs/schema/agentpolicy.v1alpha1.json"

// TestSchemaFile: the checked-in schema is exactly what the Go types
// generate. Regenerate with: mxc-runtime policy schema > docs/schema/agentpolicy.v1alpha1.json
func TestSchemaFile(t *testing.T) {
	if _, err := genSchema(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(JSONSchema()) {
		t.Fatalf("%s is stale: run `mxc-runtime policy schema > docs/schema/agentpolicy.v1alpha1.json`", schemaFile)
	}
}

// TestSchemaMatchesTypes reads the checked-in schema on its own and checks
// that every Go field is in it and every schema property is a Go field.
func TestSchemaMatchesTypes(t *testing.T) {
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties  map[string]json.RawMessage `json:"properties"`
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Type       string                     `json:"type"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	types := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(tp reflect.Type) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice || tp.Kind() == reflect.Map {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || types[tp.Name()] != nil {
			return
		}
		types[tp.Name()] = tp
		for _, f := range jsonFields(tp) {
			walk(tp.Field(f.index).Type)
		}
	}
	walk(reflect.TypeOf(AgentPolicy{}))
	props := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	fields := func(tp reflect.Type) []string {
		var out []string
		for _, f := range jsonFields(tp) {
			out = append(out, f.name)
		}
		sort.Strings(out)
		return out
	}
	for name, tp := range types {
		var got []string
		if name == "AgentPolicy" {
			got = props(doc.Properties)
		} else {
			d, ok := doc.Definitions[name]
			if !ok {
				t.Errorf("type %s has no schema definition", name)
				continue
			}
			got = props(d.Properties)
		}
		if want := fields(tp); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: schema properties %v, Go fields %v", name, got, want)
		}
	}
	for name, d := range doc.Definitions {
		if d.Type == "object" && types[name] == nil {
			t.Errorf("schema definition %s has no Go type", name)
		}
	}
}
