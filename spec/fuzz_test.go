package spec

import (
	"encoding/json"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/. Run one for a minute:
//
//	go test ./spec -run '^$' -fuzz '^FuzzParsePolicy$' -fuzztime 60s -fuzzminimizetime 5s
//
// (-fuzzminimizetime keeps the default 60 s minimization of each new input
// from eating the whole run; execs are not counted while it minimizes.)

// checkEffective runs what create would run on a policy and checks the
// invariants every Effective must hold.
func checkEffective(t *testing.T, p *AgentPolicy, node *NodeConfig, notes []string) {
	eff, err := NewEffective(p, node, nil, notes)
	if err != nil {
		return
	}
	if err := eff.Policy.Validate(); err != nil {
		t.Fatalf("effective policy invalid: %v", err)
	}
	if d, _ := Digest(&eff.Policy); d != eff.Digest {
		t.Fatalf("digest %s != %s", d, eff.Digest)
	}
	b, err := json.Marshal(eff)
	if err != nil {
		t.Fatal(err)
	}
	var back Effective
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("stored policy does not read back: %v\n%s", err, b)
	}
	if d, _ := Digest(&back.Policy); d != eff.Digest {
		t.Fatalf("digest changed through storage:\n%s", b)
	}
	// An effective policy is a fixed point: resolving it again changes nothing.
	again, err := NewEffective(&eff.Policy, node, nil, notes)
	if err != nil {
		t.Fatalf("effective policy refused on re-resolve: %v\n%s", err, b)
	}
	if again.Digest != eff.Digest {
		t.Fatalf("re-resolve changed the policy:\n%s\n%s", b, compactJSON(again.Policy))
	}
	_ = Explain(eff)
	_ = eff.AllowsName("api.example.com")
	_ = eff.Resolutions()
	s := baseSpec()
	_ = ApplyToOCI(s, eff)
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, notes, err := ParsePolicy(data)
		if err != nil {
			for _, e := range Errors(err) {
				if e.Error() == "" {
					t.Fatal("empty error message")
				}
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed policy does not validate: %v", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, notes2, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("own JSON does not parse: %v\n%s", err, b)
		}
		if len(notes2) != 0 {
			t.Fatalf("notes on re-parse: %v", notes2)
		}
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the policy:\n%s\n%s", b, b2)
		}
		checkEffective(t, p, nil, notes)
	})
}

// FuzzImportMXC forces every input down the MXC 1.0.0 import path.
func FuzzImportMXC(f *testing.F) {
	f.Add([]byte(`{"version":"1.0.0","process":{"commandLine":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := parseTree(data)
		if err != nil {
			return
		}
		m, ok := tree.(map[string]any)
		if !ok {
			return
		}
		delete(m, "apiVersion")
		m["version"] = MXCVersion
		p, notes, err := importMXC(m)
		if err != nil {
			return
		}
		if p.APIVersion != APIVersion || p.Kind != Kind {
			t.Fatalf("import gave %q %q", p.APIVersion, p.Kind)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("imported policy does not validate: %v", err)
		}
		b, _ := json.Marshal(p)
		if _, _, err := ParsePolicy(b); err != nil {
			t.Fatalf("imported policy does not re-parse: %v\n%s", err, b)
		}
		checkEffective(t, p, nil, notes)
	})
}

var fuzzNode = func() *NodeConfig {
	nc, err := ParseNodeConfig([]byte(nodeDoc))
	if err != nil {
		panic(err)
	}
	return nc
}()

// FuzzDecodeAnnotations feeds two annotations (a known key each, or an
// arbitrary io.mxc.* key) through the decoder and Resolve.
func FuzzDecodeAnnotations(f *testing.F) {
	f.Add(uint8(2), "session", uint8(3), "api.example.com:443", "x", false)
	f.Fuzz(func(t *testing.T, k1 uint8, v1 string, k2 uint8, v2 string, extra string, withNode bool) {
		keyOf := func(k uint8) string {
			if int(k) < len(KnownAnnotations) {
				return KnownAnnotations[k]
			}
			if k >= 250 {
				return AnnotationPrefix + extra
			}
			return KnownAnnotations[int(k)%len(KnownAnnotations)]
		}
		ann := map[string]string{keyOf(k1): v1, keyOf(k2): v2, "io.kubernetes.cri.container-type": "container"}
		_, derr := decodeAnnotations(ann)
		var node *NodeConfig
		if withNode {
			node = fuzzNode
		}
		eff, err := Resolve(ann, node, func(string) ([]byte, error) { return []byte(v2), nil })
		if derr != nil && err == nil {
			t.Fatalf("decode failed (%v) but Resolve succeeded", derr)
		}
		if err != nil || eff == nil {
			return
		}
		if err := eff.Policy.Validate(); err != nil {
			t.Fatalf("effective policy invalid: %v", err)
		}
		checkEffective(t, &eff.Policy, node, nil)
	})
}
