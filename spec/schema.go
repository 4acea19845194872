package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// SchemaID identifies the AgentPolicy JSON Schema.
const SchemaID = "https://mxc.dev/schemas/agentpolicy.v1alpha1.json"

// fieldDoc documents one JSON field for the schema. Every field of every
// policy type must have one: the schema is generated from the Go types, so
// the two cannot drift apart (TestSchemaMatchesTypes checks the file too).
type fieldDoc struct {
	desc      string
	enum      []string
	min, max  *float64
	minItems  int
	itemsEnum []string
}

func num(f float64) *float64 { return &f }

var typeDocs = map[string]string{
	"AgentPolicy": "An mxc agent policy: what an AI agent in an OCI container may read, write, reach and consume. Field names follow Microsoft's MXC containment configuration 1.0.0 where the two overlap.",
	"Metadata":    "Names the policy.",
	"Identity":    "The agent's identity, stamped on every audit event.",
	"Filesystem":  "File access (MXC 1.0.0). Absent: the container's own rootfs rules only. With readonlyPaths or readwritePaths, everything not listed is out of reach.",
	"Network":     "Network access (MXC 1.0.0, plus host names). Absent: egress and ingress are denied.",
	"Egress":      "Outbound rules. Deny rules win over allow rules.",
	"Ingress":     "Inbound rules.",
	"Rule":        "One rule, matching destinations and ports.",
	"Peer":        "A destination: a host name (mxc extension) or a CIDR.",
	"Port":        "A protocol and an optional destination port range.",
	"UI":          "Display, clipboard and input access (MXC 1.0.0). Absent: disable true, clipboard none, injection false.",
	"Resources":   "Limits applied as cgroup limits (job object limits on Windows). A stricter limit already in the container's spec is kept.",
	"Process":     "Process rules: MXC's timeout and mxc's capability bound.",
	"Lifecycle":   "MXC 1.0.0 lifecycle settings, recorded with the container.",
	"Tier":        "Isolation tier.",
	"Mode":        "enforce blocks; audit only logs what the file and network rules would block.",
	"Action":      "A network default action.",
	"Protocol":    "A transport protocol; any matches all.",
	"ByteSize":    "A size in bytes, or a quantity with a suffix: Ki Mi Gi Ti Pi Ei (powers of 1024) or k M G T P E (powers of 1000).",
}

var fieldDocs = map[string]fieldDoc{
	"AgentPolicy.apiVersion": {desc: "Always " + APIVersion + ".", enum: []string{APIVersion}},
	"AgentPolicy.kind":       {desc: "Always " + Kind + ".", enum: []string{Kind}},
	"AgentPolicy.metadata":   {desc: "Name and labels."},
	"AgentPolicy.identity":   {desc: "Agent identity for audit events."},
	"AgentPolicy.isolation":  {desc: "Isolation tier; default process (or the node ceiling's minIsolation)."},
	"AgentPolicy.filesystem": {desc: "File access rules."},
	"AgentPolicy.network":    {desc: "Network rules; absent means deny all egress and ingress."},
	"AgentPolicy.ui":         {desc: "Display, clipboard and input rules."},
	"AgentPolicy.resources":  {desc: "CPU, memory and process limits."},
	"AgentPolicy.process":    {desc: "Timeout and capability rules."},
	"AgentPolicy.lifecycle":  {desc: "MXC lifecycle settings."},
	"AgentPolicy.mode":       {desc: "enforce (default) or audit."},

	"Metadata.name":   {desc: "Policy name: lower-case letters, digits, '.', '-', '_' (the name io.mxc.policy.ref uses)."},
	"Metadata.labels": {desc: "Free-form labels."},

	"Identity.agent": {desc: "Agent identity, at most 256 bytes of printable text."},

	"Filesystem.readonlyPaths":  {desc: "Absolute, clean paths the agent may read (and execute) but not write."},
	"Filesystem.readwritePaths": {desc: "Absolute, clean paths the agent may read and write. A path also listed read-only is read-only."},
	"Filesystem.deniedPaths":    {desc: "Absolute, clean paths masked even inside an allowed tree (deny wins)."},

	"Network.egress":  {desc: "Outbound rules."},
	"Network.ingress": {desc: "Inbound rules."},

	"Egress.default": {desc: "Action when no rule matches; default deny."},
	"Egress.allow":   {desc: "Allowed destinations."},
	"Egress.deny":    {desc: "Denied destinations; deny wins over allow."},

	"Ingress.default":      {desc: "Inbound traffic from the private network; default deny."},
	"Ingress.hostLoopback": {desc: "Connectivity with the host's loopback; default deny."},

	"Rule.to":    {desc: "Destinations; omit to match every address.", minItems: 1},
	"Rule.ports": {desc: "Protocols and ports; omit to match all.", minItems: 1},

	"Peer.host":              {desc: "A DNS name, or *. followed by at least two labels (any name strictly under them)."},
	"Peer.allowPublicSuffix": {desc: "Marks a wildcard on a public suffix (*.github.io, *.co.uk) as intended."},
	"Peer.cidr":              {desc: "An IPv4 or IPv6 CIDR with no bits set after the prefix length."},
	"Peer.except":            {desc: "CIDRs inside cidr excluded from it."},

	"Port.protocol": {desc: "tcp, udp, icmp or any (default)."},
	"Port.port":     {desc: "Destination port; omit for every port.", min: num(1), max: num(65535)},
	"Port.endPort":  {desc: "Inclusive end of a port range; needs port.", min: num(1), max: num(65535)},

	"UI.disable":   {desc: "No display: display, session bus and ssh-agent sockets withheld and their variables removed."},
	"UI.clipboard": {desc: "Clipboard access: none (default), read, write or all.", enum: []string{"none", "read", "write", "all"}},
	"UI.injection": {desc: "Whether keyboard and mouse input injection is allowed; default false."},

	"Resources.cpus":   {desc: "CPUs (fractions allowed, at least 0.01).", min: num(0), max: num(4096)},
	"Resources.memory": {desc: "Memory limit, swap included; at least 4Mi."},
	"Resources.pids":   {desc: "Maximum number of processes and threads.", min: num(0)},

	"Process.timeout":        {desc: "Timeout in milliseconds (MXC 1.0.0); 0 or absent means none.", min: num(0), max: num(MaxTimeout)},
	"Process.capabilities":   {desc: "Linux capabilities the agent may keep at most (an upper bound on the spec's sets); absent means mxc's default agent set.", itemsEnum: allCapabilities},
	"Process.allowPtrace":    {desc: "Lets the agent ptrace its own processes (needs the node ceiling's allowPtrace)."},
	"Process.noCapabilities": {desc: "Keep no capability at all."},

	"Lifecycle.destroyOnExit":  {desc: "Destroy the container when its process exits."},
	"Lifecycle.preservePolicy": {desc: "Keep the applied policy after the process exits."},
}

var namedEnums = map[reflect.Type][]string{
	reflect.TypeOf(Tier("")):     {string(TierProcess), string(TierSession), string(TierMicroVM)},
	reflect.TypeOf(Mode("")):     {string(ModeEnforce), string(ModeAudit)},
	reflect.TypeOf(Action("")):   {string(Allow), string(Deny)},
	reflect.TypeOf(Protocol("")): {string(ProtoTCP), string(ProtoUDP), string(ProtoICMP), string(ProtoAny)},
}

// JSONSchema returns the JSON Schema (draft-07) of AgentPolicy, generated
// from the Go types; docs/schema/agentpolicy.v1alpha1.json holds the same
// text.
func JSONSchema() []byte {
	b, err := genSchema()
	if err != nil {
		panic(err) // a missing field doc; TestSchemaMatchesTypes catches it first
	}
	return b
}

func genSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := reflect.TypeOf(AgentPolicy{})
	g.ref(root)
	if g.err != nil {
		return nil, g.err
	}
	schema := map[string]any{}
	for k, v := range g.defs["AgentPolicy"].(map[string]any) {
		schema[k] = v
	}
	delete(g.defs, "AgentPolicy")
	schema["$schema"] = "http://json-schema.org/draft-07/schema#"
	schema["$id"] = SchemaID
	schema["title"] = "mxc AgentPolicy " + strings.TrimPrefix(APIVersion, "mxc.dev/")
	schema["required"] = []string{"apiVersion", "kind"}
	schema["definitions"] = g.defs
	b, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

type schemaGen struct {
	defs map[string]any
	err  error
}

func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, done := g.defs[name]; !done {
		g.defs[name] = nil // mark before recursing
		g.defs[name] = g.define(t)
	}
	return map[string]any{"$ref": "#/definitions/" + name}
}

func (g *schemaGen) define(t reflect.Type) map[string]any {
	desc, ok := typeDocs[t.Name()]
	if !ok {
		g.err = fmt.Errorf("schema: no description for type %s", t.Name())
	}
	if t == byteSizeType {
		return map[string]any{
			"description": desc,
			"oneOf": []any{
				map[string]any{"type": "integer", "minimum": 0},
				map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`},
			},
		}
	}
	if e, ok := namedEnums[t]; ok {
		return map[string]any{"description": desc, "type": "string", "enum": e}
	}
	props := map[string]any{}
	for _, f := range jsonFields(t) {
		id := t.Name() + "." + f.name
		doc, ok := fieldDocs[id]
		if !ok {
			g.err = fmt.Errorf("schema: no description for field %s", id)
			continue
		}
		s := g.typeSchema(t.Field(f.index).Type)
		if _, isRef := s["$ref"]; isRef {
			// draft-07 ignores keywords beside $ref: wrap it.
			s = map[string]any{"allOf": []any{s}}
		}
		s["description"] = doc.desc
		if doc.enum != nil {
			s["enum"] = doc.enum
		}
		if doc.min != nil {
			s["minimum"] = *doc.min
		}
		if doc.max != nil {
			s["maximum"] = *doc.max
		}
		if doc.minItems > 0 {
			s["minItems"] = doc.minItems
		}
		if doc.itemsEnum != nil {
			s["items"] = map[string]any{"type": "string", "enum": doc.itemsEnum}
		}
		props[f.name] = s
	}
	out := map[string]any{
		"description":          desc,
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if t == reflect.TypeOf(Peer{}) {
		out["oneOf"] = []any{
			map[string]any{"required": []string{"host"}, "not": map[string]any{"required": []string{"cidr"}}},
			map[string]any{"required": []string{"cidr"}, "not": map[string]any{"required": []string{"host"}}},
		}
	}
	return out
}

func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	if t == byteSizeType {
		return g.ref(t)
	}
	if _, ok := namedEnums[t]; ok {
		return g.ref(t)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		return g.ref(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	}
	g.err = fmt.Errorf("schema: no JSON type for %s", t)
	return map[string]any{}
}
