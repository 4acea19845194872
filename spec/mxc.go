package spec

import (
	"fmt"
	"strings"
)

// MXCVersion is the published MXC containment configuration version that
// mxc imports.
const MXCVersion = "1.0.0"

// The types below mirror MXC 1.0.0's published JSON schema
// (schemas/stable/mxc-config.schema.1.0.0.json in github.com/microsoft/mxc)
// so that the strict decoder refuses exactly what MXC refuses: every object
// there has additionalProperties false.

type mxcOneShot struct {
	Schema           string               `json:"$schema"`
	Comment          any                  `json:"_comment"`
	ContainerID      string               `json:"containerId"`
	Containment      string               `json:"containment"`
	Fallback         *mxcFallback         `json:"fallback"`
	Filesystem       *Filesystem          `json:"filesystem"`
	Lifecycle        *Lifecycle           `json:"lifecycle"`
	Lxc              *mxcLxc              `json:"lxc"`
	Network          *mxcNetwork          `json:"network"`
	Process          *mxcProcess          `json:"process"`
	ProcessContainer *mxcProcessContainer `json:"processContainer"`
	RuntimeConfig    *mxcRuntimeConfig    `json:"runtimeConfig"`
	Seatbelt         *mxcSeatbelt         `json:"seatbelt"`
	Telemetry        *mxcTelemetry        `json:"telemetry"`
	UI               *UI                  `json:"ui"`
	Version          string               `json:"version"`
	Wslc             *mxcWslc             `json:"wslc"`
}

type mxcFallback struct {
	AllowDaclMutation *bool `json:"allowDaclMutation"`
}

type mxcLxc struct {
	Distribution string `json:"distribution"`
	Release      string `json:"release"`
}

type mxcNetwork struct {
	Egress  *mxcEgress `json:"egress"`
	Ingress *Ingress   `json:"ingress"`
}

type mxcEgress struct {
	Default Action    `json:"default"`
	Allow   []mxcRule `json:"allow"`
	Deny    []mxcRule `json:"deny"`
}

type mxcRule struct {
	To    []mxcPeer `json:"to"`
	Ports []Port    `json:"ports"`
}

type mxcPeer struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except"`
}

type mxcProcess struct {
	CommandLine       string   `json:"commandLine"`
	Cwd               string   `json:"cwd"`
	Env               []string `json:"env"`
	InheritDefaultEnv *bool    `json:"inheritDefaultEnv"`
	Timeout           *uint32  `json:"timeout"`
}

type mxcProcessContainer struct {
	Capabilities   []string `json:"capabilities"`
	CaptureDenials *struct {
		Mode       string `json:"mode"`
		OutputPath string `json:"outputPath"`
		RetainEtl  *bool  `json:"retainEtl"`
	} `json:"captureDenials"`
	Filesystem *struct {
		EnumeratePaths []string `json:"enumeratePaths"`
	} `json:"filesystem"`
	LearningMode   *bool `json:"learningMode"`
	LeastPrivilege *bool `json:"leastPrivilege"`
	Network        *struct {
		AllowedProxyPeer string `json:"allowedProxyPeer"`
	} `json:"network"`
	UI *struct {
		DesktopSystemControl *bool  `json:"desktopSystemControl"`
		IME                  *bool  `json:"ime"`
		Isolation            string `json:"isolation"`
		SystemSettings       string `json:"systemSettings"`
	} `json:"ui"`
}

type mxcRuntimeConfig struct {
	NetworkProxy *string `json:"networkProxy"`
}

type mxcSeatbelt struct {
	ExtraMachLookups []string `json:"extraMachLookups"`
	GUIAccess        *bool    `json:"guiAccess"`
	KeychainAccess   *bool    `json:"keychainAccess"`
	NestedPty        *bool    `json:"nestedPty"`
	ProfileOverride  *string  `json:"profileOverride"`
}

type mxcTelemetry struct {
	Enabled *bool `json:"enabled"`
}

type mxcWslc struct {
	CPUCount     *uint32 `json:"cpuCount"`
	GPU          *bool   `json:"gpu"`
	Image        string  `json:"image"`
	ImageTarPath string  `json:"imageTarPath"`
	MemoryMb     *uint64 `json:"memoryMb"`
	PortMappings []struct {
		ContainerPort int    `json:"containerPort"`
		Protocol      string `json:"protocol"`
		WindowsPort   int    `json:"windowsPort"`
	} `json:"portMappings"`
	StoragePath string `json:"storagePath"`
	TargetOs    string `json:"targetOs"`
}

// State-aware provision requests: the only phases that carry a policy.
type mxcIsolationSessionProvision struct {
	Schema           string `json:"$schema"`
	Comment          any    `json:"_comment"`
	Containment      string `json:"containment"`
	IsolationSession *struct {
		Provision *struct {
			AppID string `json:"appId"`
		} `json:"provision"`
	} `json:"isolationSession"`
	Network   *mxcNetwork   `json:"network"`
	Phase     string        `json:"phase"`
	Telemetry *mxcTelemetry `json:"telemetry"`
	Version   string        `json:"version"`
}

type mxcWslcProvision struct {
	Schema      string        `json:"$schema"`
	Comment     any           `json:"_comment"`
	Containment string        `json:"containment"`
	Filesystem  *Filesystem   `json:"filesystem"`
	Network     *mxcNetwork   `json:"network"`
	Phase       string        `json:"phase"`
	Telemetry   *mxcTelemetry `json:"telemetry"`
	Version     string        `json:"version"`
	Wslc        *struct {
		Provision *struct {
			Image        string `json:"image"`
			ImageTarPath string `json:"imageTarPath"`
		} `json:"provision"`
	} `json:"wslc"`
}

// ContainmentTier maps an MXC 1.0.0 containment backend to an mxc tier.
// seatbelt (macOS sandbox-exec, a per-process sandbox like bubblewrap) has
// no backend on Linux or Windows; its portable sections mean the same
// everywhere, so it maps to the process tier and its own section is
// reported as not used.
func ContainmentTier(containment string) (Tier, bool) {
	switch containment {
	case "process", "processcontainer", "bubblewrap", "seatbelt":
		return TierProcess, true
	case "isolation_session", "lxc", "wslc":
		return TierSession, true
	}
	return "", false
}

// isMXC reports whether a parsed document is an MXC request rather than an
// AgentPolicy: MXC documents carry "version" and no "apiVersion".
func isMXC(tree any) bool {
	m, ok := tree.(map[string]any)
	if !ok {
		return false
	}
	_, v := m["version"]
	_, a := m["apiVersion"]
	return v && !a
}

// importMXC converts an MXC 1.0.0 request tree into an AgentPolicy. The
// notes name every field that was read but has no meaning for an OCI
// container; they are reported, never used.
func importMXC(tree any) (*AgentPolicy, []string, error) {
	m := tree.(map[string]any)
	if v, ok := m["version"].(string); !ok || v != MXCVersion {
		return nil, nil, &FieldError{Path: "version", Msg: fmt.Sprintf("%v is not a supported MXC version (want %q)", m["version"], MXCVersion)}
	}
	phase, hasPhase := m["phase"]
	if !hasPhase {
		return importOneShot(tree)
	}
	switch phase {
	case "provision":
	case "start", "exec", "stop", "deprovision":
		return nil, nil, &FieldError{Path: "phase", Msg: fmt.Sprintf("an MXC %q request acts on an existing sandbox and carries no containment policy; give the one-shot or provision request", phase)}
	default:
		return nil, nil, &FieldError{Path: "phase", Msg: fmt.Sprintf("%v is not an MXC 1.0.0 phase (want provision, start, exec, stop or deprovision)", phase)}
	}
	switch m["containment"] {
	case "isolation_session":
		var req mxcIsolationSessionProvision
		if err := decodeTree(tree, &req); err != nil {
			return nil, nil, err
		}
		p := &AgentPolicy{APIVersion: APIVersion, Kind: Kind, Isolation: TierSession}
		var l errList
		var notes []string
		p.Network = convertNetwork(&l, "network", req.Network)
		if req.Network == nil {
			l.add("network", "required by MXC 1.0.0 for containment isolation_session")
		} else {
			requireAllowAll(&l, req.Network)
		}
		if req.IsolationSession != nil {
			notes = append(notes, "isolationSession: not used (IsolationSession backend settings; mxc runs the OCI container itself)")
		}
		if req.Telemetry != nil {
			notes = append(notes, "telemetry: not used (mxc sends no telemetry)")
		}
		return finishImport(p, notes, &l)
	case "wslc":
		var req mxcWslcProvision
		if err := decodeTree(tree, &req); err != nil {
			return nil, nil, err
		}
		p := &AgentPolicy{APIVersion: APIVersion, Kind: Kind, Isolation: TierSession, Filesystem: req.Filesystem}
		var l errList
		var notes []string
		p.Network = convertNetwork(&l, "network", req.Network)
		if req.Wslc != nil {
			notes = append(notes, "wslc: not used (WSLC backend settings; the image and rootfs come from the OCI bundle)")
		}
		if req.Telemetry != nil {
			notes = append(notes, "telemetry: not used (mxc sends no telemetry)")
		}
		return finishImport(p, notes, &l)
	}
	return nil, nil, &FieldError{Path: "containment", Msg: fmt.Sprintf("%v: an MXC provision request needs containment isolation_session or wslc", m["containment"])}
}

func importOneShot(tree any) (*AgentPolicy, []string, error) {
	var req mxcOneShot
	if err := decodeTree(tree, &req); err != nil {
		return nil, nil, err
	}
	var l errList
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	p := &AgentPolicy{APIVersion: APIVersion, Kind: Kind}
	if req.Containment != "" {
		t, ok := ContainmentTier(req.Containment)
		if !ok {
			l.add("containment", "%q is not an MXC 1.0.0 containment (want process, processcontainer, lxc, bubblewrap, seatbelt, isolation_session or wslc)", req.Containment)
		}
		p.Isolation = t
		if req.Containment == "seatbelt" {
			note("containment: seatbelt (macOS) has no backend on Linux or Windows; mapped to tier process")
		}
	}
	p.Filesystem = req.Filesystem
	p.Network = convertNetwork(&l, "network", req.Network)
	p.UI = req.UI
	p.Lifecycle = req.Lifecycle

	if req.Process == nil {
		l.add("process", "required by MXC 1.0.0 one-shot requests")
	} else {
		pr := req.Process
		if pr.CommandLine == "" {
			l.add("process.commandLine", "required and non-empty in MXC 1.0.0")
		} else {
			note("process.commandLine: not used (an OCI container's process comes from config.json)")
		}
		if pr.Cwd != "" {
			note("process.cwd: not used (an OCI container's working directory comes from config.json)")
		}
		if pr.Env != nil {
			note("process.env: not used (an OCI container's environment comes from config.json)")
		}
		if pr.InheritDefaultEnv != nil {
			note("process.inheritDefaultEnv: not used (an OCI container's environment comes from config.json)")
		}
		if pr.Timeout != nil && *pr.Timeout > 0 {
			p.Process = &Process{Timeout: uint64(*pr.Timeout)}
		}
	}
	if req.ContainerID != "" {
		note("containerId: not used (the OCI runtime's container id names the container)")
	}
	if req.Fallback != nil {
		note("fallback: not used (mxc never mutates host DACLs; it refuses what it cannot enforce)")
	}
	if req.Lxc != nil {
		if req.Lxc.Distribution == "" {
			l.add("lxc.distribution", "required by MXC 1.0.0")
		}
		if req.Lxc.Release == "" {
			l.add("lxc.release", "required by MXC 1.0.0")
		}
		note("lxc: not used (the distribution comes from the OCI bundle's rootfs)")
	}
	if pc := req.ProcessContainer; pc != nil {
		for i, c := range pc.Capabilities {
			lc := strings.ToLower(c)
			if strings.Contains(c, ",") || lc == "learningmodelogging" || lc == "permissivelearningmode" {
				l.add(index("processContainer.capabilities", i), "%q is not allowed by MXC 1.0.0 (no commas; learningModeLogging and permissiveLearningMode are reserved)", c)
			}
		}
		if cd := pc.CaptureDenials; cd != nil && cd.Mode != "" && cd.Mode != "block" && cd.Mode != "allow" {
			l.add("processContainer.captureDenials.mode", "%q is not block or allow", cd.Mode)
		}
		if u := pc.UI; u != nil {
			switch u.Isolation {
			case "", "container", "desktop", "handles", "atoms":
			default:
				l.add("processContainer.ui.isolation", "%q is not container, desktop, handles or atoms", u.Isolation)
			}
		}
		note("processContainer: not used (Windows AppContainer backend settings; mxc applies its own tiers)")
	}
	if rc := req.RuntimeConfig; rc != nil {
		if rc.NetworkProxy != nil {
			note("runtimeConfig.networkProxy: not used (mxc enforces egress in the kernel and configures no proxy)")
		}
		if req.Containment == "isolation_session" && rc.NetworkProxy != nil {
			l.add("runtimeConfig.networkProxy", "not allowed by MXC 1.0.0 with containment isolation_session")
		}
	}
	if req.Seatbelt != nil {
		note("seatbelt: not used (macOS Seatbelt settings have no meaning on Linux or Windows)")
	}
	if req.Telemetry != nil {
		note("telemetry: not used (mxc sends no telemetry)")
	}
	if w := req.Wslc; w != nil {
		for i, pm := range w.PortMappings {
			at := index("wslc.portMappings", i)
			checkRequiredPort(&l, joinPath(at, "containerPort"), pm.ContainerPort)
			checkRequiredPort(&l, joinPath(at, "windowsPort"), pm.WindowsPort)
			if pm.Protocol != "" && pm.Protocol != "tcp" {
				l.add(joinPath(at, "protocol"), "%q: MXC 1.0.0 supports only tcp", pm.Protocol)
			}
		}
		note("wslc: not used (WSLC backend settings; image, CPUs and memory come from the OCI bundle and resources)")
	}
	if req.Containment == "isolation_session" {
		// MXC's IsolationSession backend cannot restrict the network, so its
		// schema requires the request to say so with an all-allow network.
		if req.Network == nil {
			l.add("network", "required by MXC 1.0.0 for containment isolation_session")
		} else {
			requireAllowAll(&l, req.Network)
		}
	}
	return finishImport(p, notes, &l)
}

func checkRequiredPort(l *errList, at string, n int) {
	switch {
	case n == 0:
		l.add(at, "required by MXC 1.0.0")
	case n < 1:
		l.add(at, "%d is below 1", n)
	case n > 65535:
		l.add(at, "%d is above 65535", n)
	}
}

// requireAllowAll enforces MXC's IsolationSessionNetwork shape: egress
// {default: allow}, ingress {default: allow, hostLoopback: allow}, nothing else.
func requireAllowAll(l *errList, n *mxcNetwork) {
	const why = "MXC 1.0.0 requires allow with containment isolation_session (the backend cannot restrict the network)"
	if n.Egress == nil {
		l.add("network.egress", "required: %s", why)
	} else {
		if n.Egress.Default != Allow {
			l.add("network.egress.default", "%s", why)
		}
		if n.Egress.Allow != nil || n.Egress.Deny != nil {
			l.add("network.egress", "only default is allowed: %s", why)
		}
	}
	if n.Ingress == nil {
		l.add("network.ingress", "required: %s", why)
	} else {
		if n.Ingress.Default != Allow {
			l.add("network.ingress.default", "%s", why)
		}
		if n.Ingress.HostLoopback != Allow {
			l.add("network.ingress.hostLoopback", "%s", why)
		}
	}
}

func convertNetwork(l *errList, at string, n *mxcNetwork) *Network {
	if n == nil {
		return nil
	}
	out := &Network{Ingress: n.Ingress}
	if e := n.Egress; e != nil {
		out.Egress = &Egress{
			Default: e.Default,
			Allow:   convertRules(l, joinPath(at, "egress.allow"), e.Allow),
			Deny:    convertRules(l, joinPath(at, "egress.deny"), e.Deny),
		}
	}
	return out
}

func convertRules(l *errList, at string, rules []mxcRule) []Rule {
	if rules == nil {
		return nil
	}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i].Ports = r.Ports
		if r.To != nil {
			out[i].To = make([]Peer, len(r.To))
		}
		for j, p := range r.To {
			if p.CIDR == "" {
				l.add(joinPath(index(joinPath(index(at, i), "to"), j), "cidr"), "required by MXC 1.0.0")
			}
			out[i].To[j] = Peer{CIDR: p.CIDR, Except: p.Except}
		}
	}
	return out
}

func finishImport(p *AgentPolicy, notes []string, l *errList) (*AgentPolicy, []string, error) {
	if err := l.err(); err != nil {
		return nil, nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	return p, notes, nil
}
