package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// All annotation parsing of mxc lives in this file. Keys carry the prefix
// io.mxc.; an unknown io.mxc.* key is an error (a typo must not silently
// drop a rule), and a conflict between keys is an error, never a pick.
const (
	AnnotationPrefix       = "io.mxc."
	AnnotationPolicy       = "io.mxc.policy"        // whole AgentPolicy or MXC 1.0.0 document, JSON
	AnnotationPolicyRef    = "io.mxc.policy.ref"    // name of a policy installed on the node
	AnnotationIsolation    = "io.mxc.isolation"     // process | session | microvm
	AnnotationNetworkAllow = "io.mxc.network.allow" // "api.openai.com:443,*.example.com:443,10.0.0.0/8:5432-5433/tcp"
	AnnotationFSReadonly   = "io.mxc.fs.readonly"   // comma-separated paths
	AnnotationFSReadwrite  = "io.mxc.fs.readwrite"  // comma-separated paths
	AnnotationFSDeny       = "io.mxc.fs.deny"       // comma-separated paths
	AnnotationUI           = "io.mxc.ui"            // "disable" | "enable[,clipboard=read][,injection=true]"
	AnnotationIdentity     = "io.mxc.identity"      // agent identity stamped on audit events
	AnnotationMode         = "io.mxc.mode"          // enforce | audit
)

// KnownAnnotations lists every io.mxc.* key mxc reads.
var KnownAnnotations = []string{
	AnnotationPolicy, AnnotationPolicyRef, AnnotationIsolation, AnnotationNetworkAllow,
	AnnotationFSReadonly, AnnotationFSReadwrite, AnnotationFSDeny, AnnotationUI,
	AnnotationIdentity, AnnotationMode,
}

// MaxAnnotationSize bounds one annotation value (Kubernetes caps all of a
// pod's annotations together at 256 KiB).
const MaxAnnotationSize = 256 << 10

// annotationSet is what the io.mxc.* annotations of one container say.
type annotationSet struct {
	policy      *AgentPolicy
	policyNotes []string
	ref         string
	isolation   Tier
	netAllow    []Rule
	fsReadonly  []string
	fsReadwrite []string
	fsDeny      []string
	ui          *UI
	identity    string
	mode        Mode
	keys        []string // io.mxc.* keys present, sorted
}

func (s *annotationSet) empty() bool { return len(s.keys) == 0 }

// shortKeys lists the short keys present, in KnownAnnotations order.
func (s *annotationSet) shortKeys() []string {
	var out []string
	for _, k := range s.keys {
		if k != AnnotationPolicy && k != AnnotationPolicyRef {
			out = append(out, k)
		}
	}
	return out
}

// HasPolicyAnnotations reports whether any io.mxc.* annotation is present.
func HasPolicyAnnotations(annotations map[string]string) bool {
	for k := range annotations {
		if strings.HasPrefix(k, AnnotationPrefix) {
			return true
		}
	}
	return false
}

// decodeAnnotations reads every io.mxc.* annotation; other keys are
// ignored. All problems are returned together.
func decodeAnnotations(a map[string]string) (*annotationSet, error) {
	s := &annotationSet{}
	var errs []error
	fail := func(k string, err error) {
		for _, e := range Errors(err) {
			errs = append(errs, fmt.Errorf("annotation %s: %w", k, e))
		}
	}
	for _, k := range sortedKeys(a) {
		if !strings.HasPrefix(k, AnnotationPrefix) {
			continue
		}
		s.keys = append(s.keys, k)
		v := a[k]
		if len(v) > MaxAnnotationSize {
			fail(k, fmt.Errorf("value is %d bytes, above %d", len(v), MaxAnnotationSize))
			continue
		}
		if strings.TrimSpace(v) == "" {
			fail(k, errors.New("empty value"))
			continue
		}
		var err error
		switch k {
		case AnnotationPolicy:
			s.policy, s.policyNotes, err = ParsePolicy([]byte(v))
		case AnnotationPolicyRef:
			s.ref = strings.TrimSpace(v)
			if !isName(s.ref) {
				err = fmt.Errorf("%q is not a policy name (lower-case letters, digits, '.', '-', '_')", v)
			}
		case AnnotationIsolation:
			s.isolation = Tier(strings.TrimSpace(v))
			switch s.isolation {
			case TierProcess, TierSession, TierMicroVM:
			default:
				err = fmt.Errorf("%q is not a tier (want process, session or microvm)", v)
			}
		case AnnotationNetworkAllow:
			s.netAllow, err = parseNetworkAllow(v)
		case AnnotationFSReadonly:
			s.fsReadonly, err = parsePathList(v)
		case AnnotationFSReadwrite:
			s.fsReadwrite, err = parsePathList(v)
		case AnnotationFSDeny:
			s.fsDeny, err = parsePathList(v)
		case AnnotationUI:
			s.ui, err = parseUI(v)
		case AnnotationIdentity:
			s.identity = v
			if msg := checkText(v, 256); msg != "" {
				err = errors.New(msg)
			}
		case AnnotationMode:
			s.mode = Mode(strings.TrimSpace(v))
			if s.mode != ModeEnforce && s.mode != ModeAudit {
				err = fmt.Errorf("%q is not a mode (want enforce or audit)", v)
			}
		default:
			err = fmt.Errorf("unknown mxc annotation (known: %s)", strings.Join(KnownAnnotations, ", "))
		}
		if err != nil {
			fail(k, err)
		}
	}
	if s.policy != nil && s.ref != "" {
		errs = append(errs, fmt.Errorf("annotations %s and %s conflict: give one whole policy", AnnotationPolicy, AnnotationPolicyRef))
	}
	// The same path under two fs keys is a conflict between keys.
	fsKeys := []struct {
		key   string
		paths []string
	}{{AnnotationFSReadonly, s.fsReadonly}, {AnnotationFSReadwrite, s.fsReadwrite}, {AnnotationFSDeny, s.fsDeny}}
	for i := range fsKeys {
		for j := i + 1; j < len(fsKeys); j++ {
			for _, p := range fsKeys[i].paths {
				for _, q := range fsKeys[j].paths {
					if samePath(p, q) {
						errs = append(errs, fmt.Errorf("annotations %s and %s conflict: both list %s", fsKeys[i].key, fsKeys[j].key, p))
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func parsePathList(v string) ([]string, error) {
	var out []string
	var l errList
	var fam pathFamily
	for i, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		at := index("", i)
		if p == "" {
			l.add(at, "empty path")
			continue
		}
		f, msg := checkFSPath(p)
		if msg != "" {
			l.add(at, "%s", msg)
			continue
		}
		if fam != 0 && f != fam {
			l.add(at, "%q mixes %s and %s paths", p, f, fam)
		}
		fam = f
		out = append(out, p)
	}
	return out, l.err()
}

// parseNetworkAllow reads a comma-separated list of destinations:
//
//	host[:port[-endPort][/tcp|/udp]]      api.openai.com:443
//	*.domain[:ports]                      *.githubusercontent.com:443
//	cidr[:ports]                          10.0.0.0/8:5432-5433/tcp
//	[ipv6-cidr][:ports]                   [2001:db8::/32]:443
//
// A destination without ports matches every protocol and port; ports
// without a protocol mean tcp.
func parseNetworkAllow(v string) ([]Rule, error) {
	var rules []Rule
	var l errList
	for i, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		at := index("", i)
		if e == "" {
			l.add(at, "empty destination")
			continue
		}
		r, err := parseDestination(e)
		if err != nil {
			l.add(at, "%q: %v", e, err)
			continue
		}
		var rl errList
		validateRule(&rl, "", &r, true)
		for _, fe := range Errors(rl.err()) {
			l.add(at, "%q: %v", e, fe)
		}
		rules = append(rules, r)
	}
	return rules, l.err()
}

func parseDestination(e string) (Rule, error) {
	var target, ports string
	switch {
	case strings.HasPrefix(e, "["):
		end := strings.Index(e, "]")
		if end < 0 {
			return Rule{}, errors.New("missing ']'")
		}
		target, ports = e[1:end], e[end+1:]
		if ports != "" {
			if !strings.HasPrefix(ports, ":") {
				return Rule{}, errors.New("expected ':' after ']'")
			}
			ports = ports[1:]
			if ports == "" {
				return Rule{}, errors.New("empty port")
			}
		}
	case strings.Count(e, ":") > 1:
		target = e // an IPv6 CIDR; write [cidr]:port to give ports
	default:
		var hasPort bool
		target, ports, hasPort = strings.Cut(e, ":")
		if hasPort && ports == "" {
			return Rule{}, errors.New("empty port")
		}
	}
	var r Rule
	if strings.Contains(target, "/") {
		r.To = []Peer{{CIDR: target}}
	} else {
		r.To = []Peer{{Host: target}}
	}
	if ports != "" {
		p, err := parsePortSpec(ports)
		if err != nil {
			return Rule{}, err
		}
		r.Ports = []Port{p}
	}
	return r, nil
}

func parsePortSpec(s string) (Port, error) {
	p := Port{Protocol: ProtoTCP}
	num, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		switch Protocol(proto) {
		case ProtoTCP, ProtoUDP:
			p.Protocol = Protocol(proto)
		default:
			return Port{}, fmt.Errorf("protocol %q: want tcp or udp", proto)
		}
	}
	first, last, isRange := strings.Cut(num, "-")
	var err error
	if p.Port, err = parsePortNumber(first); err != nil {
		return Port{}, err
	}
	if isRange {
		if p.EndPort, err = parsePortNumber(last); err != nil {
			return Port{}, err
		}
	}
	return p, nil
}

func parsePortNumber(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is not from 1 to 65535", n)
	}
	return n, nil
}

// parseUI reads "disable", "enable", or a comma list of disable=BOOL,
// clipboard=none|read|write|all, injection=BOOL ("enable" = disable=false).
func parseUI(v string) (*UI, error) {
	u := &UI{}
	seen := map[string]bool{}
	for _, tok := range strings.Split(v, ",") {
		tok = strings.TrimSpace(tok)
		k, val, hasVal := strings.Cut(tok, "=")
		switch {
		case tok == "disable" || tok == "enable":
			k, val = "disable", strconv.FormatBool(tok == "disable")
		case !hasVal:
			return nil, fmt.Errorf("%q: want disable, enable, clipboard=..., or injection=...", tok)
		}
		if seen[k] {
			return nil, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "disable":
			b, err := strconv.ParseBool(val)
			if err != nil || (val != "true" && val != "false") {
				return nil, fmt.Errorf("disable=%q: want true or false", val)
			}
			u.Disable = b
		case "injection":
			if val != "true" && val != "false" {
				return nil, fmt.Errorf("injection=%q: want true or false", val)
			}
			b := val == "true"
			u.Injection = &b
		case "clipboard":
			switch val {
			case "none", "read", "write", "all":
				u.Clipboard = val
			default:
				return nil, fmt.Errorf("clipboard=%q: want none, read, write or all", val)
			}
		default:
			return nil, fmt.Errorf("%q: want disable, enable, clipboard=..., or injection=...", tok)
		}
	}
	if !seen["disable"] {
		return nil, errors.New("say disable or enable")
	}
	if u.Disable && (u.Clipboard != "" && u.Clipboard != "none" || u.Injection != nil && *u.Injection) {
		return nil, errors.New("disable contradicts clipboard or injection access")
	}
	return u, nil
}

// applyShortKeys layers the short keys over base. When base came from an
// annotation (io.mxc.policy or io.mxc.policy.ref), a short key may only fill
// a field the document leaves unset, or repeat its value: anything else is
// a conflict. Over the node default, short keys replace what they name.
func (s *annotationSet) applyShortKeys(base *AgentPolicy, strict bool, baseName string) error {
	var errs []error
	conflict := func(k, field string, docVal any) {
		errs = append(errs, fmt.Errorf("annotation %s conflicts with %s %v in %s", k, field, docVal, baseName))
	}
	for _, k := range s.shortKeys() {
		switch k {
		case AnnotationIsolation:
			if strict && base.Isolation != "" && base.Isolation != s.isolation {
				conflict(k, "isolation", base.Isolation)
				continue
			}
			base.Isolation = s.isolation
		case AnnotationMode:
			if strict && base.Mode != "" && base.Mode != s.mode {
				conflict(k, "mode", base.Mode)
				continue
			}
			base.Mode = s.mode
		case AnnotationIdentity:
			if strict && base.Identity != nil && base.Identity.Agent != "" && base.Identity.Agent != s.identity {
				conflict(k, "identity.agent", strconv.Quote(base.Identity.Agent))
				continue
			}
			base.Identity = &Identity{Agent: s.identity}
		case AnnotationUI:
			if strict && base.UI != nil && !reflect.DeepEqual(base.UI, s.ui) {
				conflict(k, "ui", compactJSON(base.UI))
				continue
			}
			u := *s.ui
			base.UI = &u
		case AnnotationNetworkAllow:
			if base.Network == nil {
				base.Network = &Network{}
			}
			if base.Network.Egress == nil {
				base.Network.Egress = &Egress{}
			}
			if strict && len(base.Network.Egress.Allow) > 0 && !reflect.DeepEqual(base.Network.Egress.Allow, s.netAllow) {
				conflict(k, "network.egress.allow", compactJSON(base.Network.Egress.Allow))
				continue
			}
			base.Network.Egress.Allow = append([]Rule(nil), s.netAllow...)
		case AnnotationFSReadonly, AnnotationFSReadwrite, AnnotationFSDeny:
			if base.Filesystem == nil {
				base.Filesystem = &Filesystem{}
			}
			field, list, val := "filesystem.readonlyPaths", &base.Filesystem.ReadonlyPaths, s.fsReadonly
			switch k {
			case AnnotationFSReadwrite:
				field, list, val = "filesystem.readwritePaths", &base.Filesystem.ReadwritePaths, s.fsReadwrite
			case AnnotationFSDeny:
				field, list, val = "filesystem.deniedPaths", &base.Filesystem.DeniedPaths, s.fsDeny
			}
			if strict && len(*list) > 0 && !reflect.DeepEqual(*list, val) {
				conflict(k, field, compactJSON(*list))
				continue
			}
			*list = append([]string(nil), val...)
		}
	}
	return errors.Join(errs...)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Annotations returns the annotations that carry p on an OCI spec or a pod:
// the whole validated document as compact JSON under io.mxc.policy.
func Annotations(p *AgentPolicy) (map[string]string, error) {
	if p == nil {
		return nil, errors.New("no policy")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if len(b) > MaxAnnotationSize {
		return nil, fmt.Errorf("policy is %d bytes as JSON, above the %d byte annotation limit; install it on the node and use %s", len(b), MaxAnnotationSize, AnnotationPolicyRef)
	}
	return map[string]string{AnnotationPolicy: string(b)}, nil
}
