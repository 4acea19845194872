// Package egress enforces an agent policy's network section inside a
// container's network namespace: an nftables table that rejects every
// egress except loopback, established flows, the DNS redirect and the
// destinations of per-rule allow sets, and a DNS gate (a helper process per
// network namespace) that answers only the names the policy allows and adds
// each answered address to the allow sets for the record's TTL.
//
// The runtime calls Check at create, Setup once the container's network
// namespace exists and before the agent runs, and Teardown at delete. The
// gate runs in a helper of the runtime's (Config.Host: the container's
// policy monitor, which runs a Keeper) or in an `egress-gate` process of
// its own; either restarts it in-process when it fails.
// NewSandbox gives a host command (the `sandbox` verb) a network namespace of
// its own with the same rules. See docs/network.md for the model, its limits
// and its failure behaviour.
//
// Everything but this file is Linux-only.
package egress
