//go:build windows

package hcs

import (
	"encoding/json"
	"fmt"

	"github.com/Microsoft/hcsshim/hcn"
)

// namespaceEndpoints lists the HNS endpoints of a network namespace: HCS v1
// attaches endpoints, not namespaces.
func namespaceEndpoints(ns string) ([]string, error) {
	ids, err := hcn.GetNamespaceEndpointIds(ns)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: endpoints: %w", ns, err)
	}
	return ids, nil
}

// endpointACLs returns the ACL policies an endpoint carries.
func endpointACLs(ep *hcn.HostComputeEndpoint) ([]ACL, error) {
	var out []ACL
	for _, p := range ep.Policies {
		if p.Type != hcn.ACL {
			continue
		}
		var s hcn.AclPolicySetting
		if err := json.Unmarshal(p.Settings, &s); err != nil {
			return nil, fmt.Errorf("endpoint %s: ACL policy: %w", ep.Id, err)
		}
		out = append(out, aclFromHCN(s))
	}
	return out, nil
}

// applyACLs puts acls on every endpoint before the container starts. An
// endpoint without ACLs gets them; one that already carries exactly these
// (a sibling container of the same pod, with the same policy) is left as it
// is; one that carries other ACLs is refused: HNS would apply the union of
// both rule sets, and another container's allow rules could open what this
// policy blocks. It returns the endpoints mxc changed.
//
// mxc never removes the ACLs again: the endpoint belongs to whoever made it
// (docker, CNI) and is deleted with the container or pod, and a sibling of
// the same pod may still rely on them.
func applyACLs(endpoints []string, acls []ACL) ([]string, error) {
	var changed []string
	for _, id := range endpoints {
		ep, err := hcn.GetEndpointByID(id)
		if err != nil {
			return changed, fmt.Errorf("HNS endpoint %s: %w", id, err)
		}
		have, err := endpointACLs(ep)
		if err != nil {
			return changed, err
		}
		if len(have) > 0 {
			if SameACLSet(have, acls) {
				continue
			}
			return changed, fmt.Errorf("HNS endpoint %s already carries %d ACL policies that differ from this container's network policy; HNS would merge both rule sets, so the container is refused", id, len(have))
		}
		req := hcn.PolicyEndpointRequest{}
		for _, a := range acls {
			raw, err := json.Marshal(a.toHCN())
			if err != nil {
				return changed, err
			}
			req.Policies = append(req.Policies, hcn.EndpointPolicy{Type: hcn.ACL, Settings: raw})
		}
		if err := ep.ApplyPolicy(hcn.RequestTypeAdd, req); err != nil {
			return changed, fmt.Errorf("HNS endpoint %s: apply %d ACL policies: %w", id, len(acls), err)
		}
		changed = append(changed, id)
	}
	return changed, nil
}
