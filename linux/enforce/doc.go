// Package enforce is the Linux policy engine: it implements
// container.PolicyEngine, turning a resolved agent policy into what the
// kernel enforces for a container and for every process started in it.
//
//   - Resolve: spec.Resolve over the spec's annotations and the node config.
//   - PrepareSpec: spec.ApplyToOCI (masks, read-only mounts, capabilities,
//     no_new_privs, cgroup limits, namespaces, environment scrub) plus the
//     Linux-only parts: the tier (user namespace and id range for session,
//     refusal for microvm), UI devices, the spec's seccomp profile moved into
//     the agent's last step, and the check that this kernel can enforce every
//     rule (refusal, or a recorded degradation when the node allows it).
//   - PrepareProcess: the init and each exec go through the last step
//     (linux/agentexec), which applies Landlock and seccomp right before the
//     agent's execve; exec --cap beyond the policy is refused.
//   - AfterCreate: the egress filter in the container's network namespace
//     (linux/egress) and the per-container monitor (timeout, oom and
//     kernel-reported fs.deny events).
//   - Teardown: undoes all of it; idempotent.
//
// docs/design/enforcement.md explains the choices.
package enforce
