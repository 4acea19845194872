package spec

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// MaxTimeout is MXC 1.0.0's bound on process.timeout (ms, uint32).
const MaxTimeout = 4294967295

// Minimums below which a limit cannot hold a running container.
const (
	MinCPUs   = 0.01
	MinMemory = 4 << 20
)

// Validate checks every rule of a policy document and returns all problems
// joined, each a *FieldError naming its path. A valid policy may still be
// refused by a node ceiling (see NewEffective).
func (p *AgentPolicy) Validate() error {
	var l errList
	validatePolicy(&l, "", p)
	return l.err()
}

func validatePolicy(l *errList, at string, p *AgentPolicy) {
	if p == nil {
		l.add(at, "no policy")
		return
	}
	switch p.APIVersion {
	case APIVersion:
	case "":
		l.add(joinPath(at, "apiVersion"), "required (%s)", APIVersion)
	default:
		l.add(joinPath(at, "apiVersion"), "%q is not supported (want %s)", p.APIVersion, APIVersion)
	}
	switch p.Kind {
	case Kind:
	case "":
		l.add(joinPath(at, "kind"), "required (%s)", Kind)
	default:
		l.add(joinPath(at, "kind"), "%q is not supported (want %s)", p.Kind, Kind)
	}
	if n := p.Metadata.Name; n != "" && !isName(n) {
		l.add(joinPath(at, "metadata.name"), "%q is not a valid name (lower-case letters, digits, '.', '-', '_'; at most 253)", n)
	}
	for _, k := range sortedKeys(p.Metadata.Labels) {
		if k == "" || len(k) > 317 || !utf8.ValidString(k) {
			l.add(key(joinPath(at, "metadata.labels"), k), "invalid label key")
		}
	}
	if p.Identity != nil {
		if msg := checkText(p.Identity.Agent, 256); msg != "" {
			l.add(joinPath(at, "identity.agent"), "%s", msg)
		}
	}
	switch p.Isolation {
	case "", TierProcess, TierSession, TierMicroVM:
	default:
		l.add(joinPath(at, "isolation"), "%q is not a tier (want process, session or microvm)", p.Isolation)
	}
	switch p.Mode {
	case "", ModeEnforce, ModeAudit:
	default:
		l.add(joinPath(at, "mode"), "%q is not a mode (want enforce or audit)", p.Mode)
	}
	validateFilesystem(l, joinPath(at, "filesystem"), p.Filesystem)
	validateNetwork(l, joinPath(at, "network"), p.Network)
	if u := p.UI; u != nil {
		switch u.Clipboard {
		case "", "none", "read", "write", "all":
		default:
			l.add(joinPath(at, "ui.clipboard"), "%q is not a clipboard access (want none, read, write or all)", u.Clipboard)
		}
	}
	if r := p.Resources; r != nil {
		validateResources(l, joinPath(at, "resources"), r)
	}
	if pr := p.Process; pr != nil {
		if pr.Timeout > MaxTimeout {
			l.add(joinPath(at, "process.timeout"), "%d is above %d", pr.Timeout, uint64(MaxTimeout))
		}
		for i, c := range pr.Capabilities {
			validateCapability(l, index(joinPath(at, "process.capabilities"), i), c)
		}
		if pr.NoCapabilities && len(pr.Capabilities) > 0 {
			l.add(joinPath(at, "process.noCapabilities"), "contradicts process.capabilities")
		}
	}
}

func validateCapability(l *errList, at, c string) {
	if isKnownCapability(c) {
		return
	}
	if up := strings.ToUpper(c); isKnownCapability(up) || isKnownCapability("CAP_"+up) {
		if !strings.HasPrefix(up, "CAP_") {
			up = "CAP_" + up
		}
		l.add(at, "%q: write %s", c, up)
		return
	}
	l.add(at, "%q is not a Linux capability", c)
}

func validateResources(l *errList, at string, r *Resources) {
	switch {
	case r.CPUs < 0:
		l.add(joinPath(at, "cpus"), "%v is below 0", r.CPUs)
	case r.CPUs > 0 && r.CPUs < MinCPUs:
		l.add(joinPath(at, "cpus"), "%v is below %v", r.CPUs, MinCPUs)
	case r.CPUs > 4096:
		l.add(joinPath(at, "cpus"), "%v is above 4096", r.CPUs)
	}
	switch {
	case r.Memory < 0:
		l.add(joinPath(at, "memory"), "%d is below 0", r.Memory)
	case r.Memory > 0 && r.Memory < MinMemory:
		l.add(joinPath(at, "memory"), "%s is below %s", r.Memory, ByteSize(MinMemory))
	}
	if r.Pids < 0 {
		l.add(joinPath(at, "pids"), "%d is below 0", r.Pids)
	}
}

// checkText accepts printable UTF-8 up to max bytes.
func checkText(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	return ""
}

// Path families: container paths are POSIX for Linux containers and
// drive-letter paths for Windows containers; one policy uses one family.
type pathFamily int

const (
	famPOSIX pathFamily = iota + 1
	famWindows
)

func (f pathFamily) String() string {
	if f == famWindows {
		return "Windows"
	}
	return "Linux"
}

// checkFSPath returns the family of p, or a problem.
func checkFSPath(p string) (pathFamily, string) {
	if strings.ContainsRune(p, 0) {
		return 0, "contains a NUL byte"
	}
	if hasDrivePrefix(p) {
		if strings.Contains(p, "/") {
			return 0, fmt.Sprintf("%q mixes '/' into a Windows path", p)
		}
		rest := p[3:]
		if rest == "" {
			return famWindows, ""
		}
		for _, c := range strings.Split(rest, `\`) {
			switch {
			case c == "":
				return 0, fmt.Sprintf("%q has an empty component or a trailing '\\'", p)
			case c == "." || c == "..":
				return 0, fmt.Sprintf("%q is not clean (no '.' or '..' components)", p)
			case strings.ContainsAny(c, `<>:"|?*`):
				return 0, fmt.Sprintf("%q has a character Windows forbids in names", p)
			}
		}
		return famWindows, ""
	}
	if !strings.HasPrefix(p, "/") {
		return 0, fmt.Sprintf("%q is not absolute", p)
	}
	if c := path.Clean(p); c != p {
		return 0, fmt.Sprintf("%q is not clean (write %s)", p, c)
	}
	return famPOSIX, ""
}

// within reports whether child is parent or lies under it.
func within(child, parent string) bool {
	if hasDrivePrefix(parent) {
		c, p := strings.ToLower(child), strings.ToLower(parent)
		if c == p {
			return true
		}
		if !strings.HasSuffix(p, `\`) {
			p += `\`
		}
		return strings.HasPrefix(c, p)
	}
	return child == parent || parent == "/" || strings.HasPrefix(child, parent+"/")
}

func samePath(a, b string) bool {
	if hasDrivePrefix(a) {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func validateFilesystem(l *errList, at string, fs *Filesystem) {
	if fs == nil {
		return
	}
	var fam pathFamily
	check := func(field string, list []string, denied bool) {
		for i, p := range list {
			pa := index(joinPath(at, field), i)
			f, msg := checkFSPath(p)
			if msg != "" {
				l.add(pa, "%s", msg)
				continue
			}
			if fam == 0 {
				fam = f
			} else if f != fam {
				l.add(pa, "%q is a %s path but the policy's earlier paths are %s paths", p, f, fam)
			}
			if denied && (p == "/" || (f == famWindows && len(p) == 3)) {
				l.add(pa, "the root cannot be denied (give no readonlyPaths/readwritePaths instead to grant nothing)")
			}
		}
	}
	check("readonlyPaths", fs.ReadonlyPaths, false)
	check("readwritePaths", fs.ReadwritePaths, false)
	check("deniedPaths", fs.DeniedPaths, true)
}

func validateNetwork(l *errList, at string, n *Network) {
	if n == nil {
		return
	}
	if e := n.Egress; e != nil {
		ea := joinPath(at, "egress")
		validateAction(l, joinPath(ea, "default"), e.Default)
		for i := range e.Allow {
			validateRule(l, index(joinPath(ea, "allow"), i), &e.Allow[i], true)
		}
		for i := range e.Deny {
			validateRule(l, index(joinPath(ea, "deny"), i), &e.Deny[i], false)
		}
	}
	if in := n.Ingress; in != nil {
		validateAction(l, joinPath(at, "ingress.default"), in.Default)
		validateAction(l, joinPath(at, "ingress.hostLoopback"), in.HostLoopback)
	}
}

func validateAction(l *errList, at string, a Action) {
	switch a {
	case "", Allow, Deny:
	default:
		l.add(at, "%q is not an action (want allow or deny)", a)
	}
}

// validateRule checks a rule; allow rules also get the public suffix check
// (denying a whole public suffix is harmless, allowing one is rarely meant).
func validateRule(l *errList, at string, r *Rule, allow bool) {
	for i := range r.To {
		validatePeer(l, index(joinPath(at, "to"), i), &r.To[i], allow)
	}
	for i := range r.Ports {
		validatePort(l, index(joinPath(at, "ports"), i), &r.Ports[i])
	}
}

func validatePeer(l *errList, at string, p *Peer, allow bool) {
	switch {
	case p.Host != "" && p.CIDR != "":
		l.add(at, "give either host or cidr, not both")
		return
	case p.Host == "" && p.CIDR == "":
		l.add(at, "give a host or a cidr")
		return
	}
	if p.Host != "" {
		if len(p.Except) > 0 {
			l.add(joinPath(at, "except"), "only a cidr destination can have except")
		}
		if msg := checkHost(p.Host, p.AllowPublicSuffix, allow); msg != "" {
			l.add(joinPath(at, "host"), "%s", msg)
		}
		if p.AllowPublicSuffix && !strings.HasPrefix(p.Host, "*.") {
			l.add(joinPath(at, "allowPublicSuffix"), "only meaningful on a wildcard host (*.example.com)")
		}
		return
	}
	if p.AllowPublicSuffix {
		l.add(joinPath(at, "allowPublicSuffix"), "only meaningful on a wildcard host (*.example.com)")
	}
	pfx, msg := checkCIDR(p.CIDR)
	if msg != "" {
		l.add(joinPath(at, "cidr"), "%s", msg)
		return
	}
	for i, e := range p.Except {
		ea := index(joinPath(at, "except"), i)
		ep, msg := checkCIDR(e)
		switch {
		case msg != "":
			l.add(ea, "%s", msg)
		case ep.Addr().Is4() != pfx.Addr().Is4():
			l.add(ea, "%s is not the same address family as %s", e, p.CIDR)
		case ep.Bits() < pfx.Bits() || !pfx.Contains(ep.Addr()):
			l.add(ea, "%s is not inside %s", e, p.CIDR)
		case ep == pfx:
			l.add(ea, "%s removes all of %s", e, p.CIDR)
		}
	}
}

// checkCIDR parses a canonical prefix ("192.0.2.0/24", "2001:db8::/32").
func checkCIDR(s string) (netip.Prefix, string) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.Prefix{}, fmt.Sprintf("%q is an address, not a CIDR (write %s/%d)", s, a, a.BitLen())
		}
		return netip.Prefix{}, fmt.Sprintf("%q is not a CIDR", s)
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Sprintf("%q has bits set after the prefix length (write %s)", s, pfx.Masked())
	}
	return pfx, ""
}

// normalizeHost lower-cases a host name and drops one trailing dot.
func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// checkHost validates a DNS name or a "*." wildcard with at least two
// labels after the star. An allow wildcard on a public suffix (*.co.uk,
// *.github.io) matches sites of unrelated owners and needs allowPublicSuffix.
func checkHost(h string, allowPS, allow bool) string {
	n := normalizeHost(h)
	wild := strings.HasPrefix(n, "*.")
	base := strings.TrimPrefix(n, "*.")
	if strings.Contains(base, "*") {
		return fmt.Sprintf("%q: a wildcard is allowed only as the whole first label (*.example.com)", h)
	}
	if _, err := netip.ParseAddr(strings.Trim(base, "[]")); err == nil {
		return fmt.Sprintf("%q is an address; use cidr: %s/%d", h, base, map[bool]int{true: 32, false: 128}[strings.Contains(base, ".")])
	}
	if base == "" || len(base) > 253 {
		return fmt.Sprintf("%q is not a valid host name", h)
	}
	labels := strings.Split(base, ".")
	for _, lb := range labels {
		if !isLabel(lb) {
			return fmt.Sprintf("%q is not a valid host name (label %q)", h, lb)
		}
	}
	if wild {
		if len(labels) < 2 {
			return fmt.Sprintf("%q: a wildcard needs at least two labels after the star (*.example.com)", h)
		}
		if allow && !allowPS {
			if ps, _ := publicsuffix.PublicSuffix(base); ps == base {
				return fmt.Sprintf("%q: %s is a public suffix, so the wildcard matches sites of unrelated owners; set allowPublicSuffix: true if that is intended", h, base)
			}
		}
	}
	return ""
}

func validatePort(l *errList, at string, p *Port) {
	switch p.Protocol {
	case "", ProtoTCP, ProtoUDP, ProtoAny:
	case ProtoICMP:
		if p.Port != 0 || p.EndPort != 0 {
			l.add(at, "icmp has no ports")
		}
	default:
		l.add(joinPath(at, "protocol"), "%q is not a protocol (want tcp, udp, icmp or any)", p.Protocol)
	}
	checkPortNumber(l, joinPath(at, "port"), p.Port)
	checkPortNumber(l, joinPath(at, "endPort"), p.EndPort)
	if p.EndPort != 0 {
		if p.Port == 0 {
			l.add(joinPath(at, "endPort"), "needs port")
		} else if p.EndPort < p.Port {
			l.add(joinPath(at, "endPort"), "%d is below port %d", p.EndPort, p.Port)
		}
	}
}

func checkPortNumber(l *errList, at string, n int) {
	switch {
	case n < 0:
		l.add(at, "%d is below 1", n)
	case n > 65535:
		l.add(at, "%d is above 65535", n)
	}
}
