// Package shim is containerd-shim-mxc-v2, the containerd shim v2 for mxc
// (runtime_type "io.containerd.mxc.v2"). It is containerd's runc shim
// (manager, task service, process state machines, I/O; reused from
// github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2) driving
// mxc-runtime, which speaks runc's command line, plus:
//
//   - defaults: the runtime is mxc-runtime next to the shim binary, else on
//     PATH; its state root is /run/mxc (per namespace: /run/mxc/<ns>/<id>);
//   - options: runc's option keys (BinaryName, Root, SystemdCgroup, ...)
//     from runc's options type, from the TOML table containerd's CRI plugin
//     passes for a non-runc runtime_type, or from the TOML file named by
//     `ctr run --runtime-config-path`; MxcConfig names the node config
//     (mxc-runtime --config) for every task of the handler;
//   - audit: each task's audit log (<root>/<ns>/<id>/audit.jsonl, JSON lines
//     of mxc.dev/mxc/audit.Event) is followed and published on the containerd
//     event topic AuditTopic ("/mxc/audit");
//   - pods: the containers of a CRI pod share one shim process (the runc
//     manager groups them by io.kubernetes.cri.sandbox-id); their OCI specs,
//     annotations and the sandbox's network namespace path pass through
//     untouched, so mxc-runtime sees one pod, one netns, one policy.
package shim
