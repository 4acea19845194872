package hcs

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

// identityAndDevices maps the gMSA credential spec and assigned devices.
func (r *Result) identityAndDevices(s *specs.Spec, pol *spec.AgentPolicy, ann *annotations) error {
	switch cs := s.Windows.CredentialSpec.(type) {
	case nil:
	case string:
		if cs != "" {
			if ann.noGMSA {
				return fmt.Errorf("windows.credentialSpec: a gMSA credential conflicts with annotation %s", ann.noGMSAKey)
			}
			r.Config.Credentials = cs
			if pol != nil {
				r.note("windows.credentialSpec: the container runs with a gMSA domain identity; the policy's network rules still bound where it can use it")
			}
		}
	default:
		return fmt.Errorf("windows.credentialSpec: HCS schema v1 takes the credential spec as a string, got %T", cs)
	}
	for i, d := range s.Windows.Devices {
		field := fmt.Sprintf("windows.devices[%d]", i)
		if pol != nil {
			return fmt.Errorf("%s: assigning host device %s %q is not covered by the agent policy; refused", field, d.IDType, d.ID)
		}
		if !strings.EqualFold(d.IDType, "class") {
			return fmt.Errorf("%s.idType: %q is not supported by HCS schema v1 (only \"class\")", field, d.IDType)
		}
		r.Config.AssignedDevices = append(r.Config.AssignedDevices, AssignedDevice{InterfaceClassGUID: d.ID})
	}
	return nil
}

// policyRest records how the remaining policy sections hold on Windows.
func (r *Result) policyRest(pol *spec.AgentPolicy, opts Options) error {
	const noDesktop = "an HCS container has no interactive desktop: no display, clipboard or input path to the host's session exists"
	if ui := pol.UI; ui != nil {
		r.enforce(fmt.Sprintf("ui.disable: %t", ui.Disable), noDesktop)
		if ui.Clipboard != "" {
			r.enforce("ui.clipboard: "+ui.Clipboard, noDesktop)
		}
		if ui.Injection != nil {
			r.enforce(fmt.Sprintf("ui.injection: %t", *ui.Injection), noDesktop)
		}
	}
	if p := pol.Process; p != nil {
		if p.Timeout > 0 {
			r.TimeoutMS = p.Timeout
			r.enforce(fmt.Sprintf("process.timeout: %d ms", p.Timeout), "mxc's shim terminates the container (HCS Terminate) when the time is up")
		}
		if len(p.Capabilities) > 0 {
			r.note("process.capabilities: Linux capabilities do not exist in Windows containers; nothing to grant")
		}
		if !p.AllowPtrace {
			r.note("process.allowPtrace: false has no Windows counterpart: processes of one container user may debug each other inside the container, never outside it")
		}
	}
	switch pol.Mode {
	case spec.ModeAudit:
		r.note("mode: audit: HCS has no log-only mode; every rule above is enforced")
	case spec.ModeEnforce, "":
	default:
		return fmt.Errorf("mode: unknown mode %q", pol.Mode)
	}
	return nil
}
