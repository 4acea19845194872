package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// MaxDocumentSize bounds a policy or node config document. Annotations are
// far smaller in practice (Kubernetes caps all of a pod's at 256 KiB).
const MaxDocumentSize = 1 << 20

// maxDepth bounds nesting in documents; the deepest real policy field is 6.
const maxDepth = 32

// parseTree turns a YAML or JSON document into a JSON tree made of
// map[string]any, []any, string, json.Number, bool and nil. Duplicate keys
// are errors in both syntaxes (JSON's "last one wins" would be a silent pick).
func parseTree(data []byte) (tree any, err error) {
	if len(data) > MaxDocumentSize {
		return nil, fmt.Errorf("document is %d bytes, above the %d byte limit", len(data), MaxDocumentSize)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty document")
	}
	if trimmed[0] == '{' {
		t, jerr := parseJSONTree(trimmed)
		if jerr == nil {
			return t, nil
		}
		// A YAML flow mapping also starts with '{'; only if YAML fails too
		// is the JSON error the one to show.
		t, yerr := parseYAMLTree(trimmed)
		if yerr != nil {
			return nil, jerr
		}
		return t, nil
	}
	return parseYAMLTree(data)
}

func parseJSONTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSONValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

func readJSONValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &FieldError{Path: path, Msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			k, _ := kt.(string)
			if _, dup := m[k]; dup {
				return nil, &FieldError{Path: key(path, k), Msg: "duplicate key"}
			}
			v, err := readJSONValue(dec, key(path, k), depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return m, nil
	case '[':
		l := []any{}
		for i := 0; dec.More(); i++ {
			v, err := readJSONValue(dec, index(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("invalid JSON: unexpected %v", d)
}

func parseYAMLTree(data []byte) (tree any, err error) {
	// The YAML library is large and fed untrusted annotation text; a panic
	// in it must become an error, not a crashed runtime.
	defer func() {
		if r := recover(); r != nil {
			tree, err = nil, fmt.Errorf("invalid YAML: %v", r)
		}
	}()
	// sigs.k8s.io/yaml reads only the first document; a second one would be
	// silently dropped, so count them first.
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	dec.SetStrict(true)
	var first any
	if err := dec.Decode(&first); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty document")
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var second any
	if err := dec.Decode(&second); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		return nil, errors.New("more than one YAML document; give one policy per file")
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	return parseJSONTree(j)
}

// nonEmpty lists list fields where an empty list is an error rather than
// "absent": MXC 1.0.0 gives `to` and `ports` minItems 1 because omitting
// them means "match all", and [] reading as "match all" would surprise.
var nonEmpty = map[reflect.Type]map[string]bool{
	reflect.TypeOf(Rule{}):    {"to": true, "ports": true},
	reflect.TypeOf(mxcRule{}): {"to": true, "ports": true},
}

// positive lists integer fields where an explicit 0 is an error: 0 reads as
// "absent" once decoded, but MXC 1.0.0 gives ports minimum 1.
var positive = map[reflect.Type]map[string]bool{
	reflect.TypeOf(Port{}): {"port": true, "endPort": true},
}

var byteSizeType = reflect.TypeOf(ByteSize(0))

// decoder fills Go values from a JSON tree strictly: unknown fields, wrong
// types and numbers that do not fit are errors naming their path. All
// errors are collected so that a user sees every problem at once.
type decoder struct{ errs errList }

func decodeTree(tree any, out any) error {
	var d decoder
	d.decode("", tree, reflect.ValueOf(out).Elem())
	return d.errs.err()
}

func describe(raw any) string {
	switch raw.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", raw)
}

func (d *decoder) decode(path string, raw any, v reflect.Value) {
	if v.Type() == byteSizeType {
		n, err := parseByteSizeValue(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		v.SetInt(int64(n))
		return
	}
	if raw == nil {
		// null is "absent", as in encoding/json.
		v.Set(reflect.Zero(v.Type()))
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		v.Set(reflect.ValueOf(raw))
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(path, raw, nv.Elem())
		v.Set(nv)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.errs.add(path, "expected an object, got %s", describe(raw))
			return
		}
		d.decodeStruct(path, m, v)
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			d.errs.add(path, "expected a list, got %s", describe(raw))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(l), len(l))
		for i, e := range l {
			d.decode(index(path, i), e, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			d.errs.add(path, "expected an object, got %s", describe(raw))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for _, k := range sortedKeys(m) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(key(path, k), m[k], e)
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(out)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.errs.add(path, "expected a string, got %s", describe(raw))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.errs.add(path, "expected true or false, got %s", describe(raw))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := raw.(json.Number)
		if !ok {
			d.errs.add(path, "expected an integer, got %s", describe(raw))
			return
		}
		i, err := parseInteger(n)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		if v.OverflowInt(i) {
			d.errs.add(path, "%s is out of range", n)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := raw.(json.Number)
		if !ok {
			d.errs.add(path, "expected an integer, got %s", describe(raw))
			return
		}
		s := n.String()
		if strings.HasPrefix(s, "-") {
			d.errs.add(path, "%s is below 0", s)
			return
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) {
				d.errs.add(path, "%s is not an integer", s)
				return
			}
			if f >= math.MaxUint64 {
				d.errs.add(path, "%s is out of range", s)
				return
			}
			u = uint64(f)
		}
		if v.OverflowUint(u) {
			d.errs.add(path, "%s is above %d", s, uint64(1)<<(v.Type().Bits())-1)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		n, ok := raw.(json.Number)
		if !ok {
			d.errs.add(path, "expected a number, got %s", describe(raw))
			return
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errs.add(path, "%s is not a finite number", n)
			return
		}
		v.SetFloat(f)
	default:
		d.errs.add(path, "cannot decode into %s", v.Type())
	}
}

// parseInteger accepts integral numbers also when written as 443.0 or 1e3
// (YAML and some JSON producers do), and refuses fractions.
func parseInteger(n json.Number) (int64, error) {
	s := n.String()
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not an integer", s)
	}
	if f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	return int64(f), nil
}

type structField struct {
	name  string
	index int
}

func jsonFields(t reflect.Type) []structField {
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, structField{name: name, index: i})
	}
	return out
}

func (d *decoder) decodeStruct(path string, m map[string]any, v reflect.Value) {
	fields := jsonFields(v.Type())
	byName := make(map[string]int, len(fields))
	for _, f := range fields {
		byName[f.name] = f.index
	}
	for _, k := range sortedKeys(m) {
		i, ok := byName[k]
		if !ok {
			msg := "unknown field"
			for _, f := range fields {
				if strings.EqualFold(f.name, k) {
					msg = fmt.Sprintf("unknown field (did you mean %q?)", f.name)
				}
			}
			if path == "" && k == "spec" && v.Type() == reflect.TypeFor[AgentPolicy]() {
				// Kubernetes habit: policies have no spec wrapper.
				msg = "unknown field (a policy has no spec: section; its fields, such as filesystem and network, sit at the top level)"
			}
			d.errs.add(key(path, k), "%s", msg)
			continue
		}
		if l, isList := m[k].([]any); isList && len(l) == 0 && nonEmpty[v.Type()][k] {
			d.errs.add(key(path, k), "must not be empty (omit it to match all)")
			continue
		}
		if n, isNum := m[k].(json.Number); isNum && positive[v.Type()][k] {
			if i, err := parseInteger(n); err == nil && i == 0 {
				d.errs.add(key(path, k), "0 is below 1 (omit it to match every port)")
				continue
			}
		}
		d.decode(key(path, k), m[k], v.Field(i))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
