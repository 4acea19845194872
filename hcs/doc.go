// Package hcs is mxc's Windows driver: it maps an OCI bundle (its Windows
// section) plus the effective agent policy onto the Host Compute Service
// through hcsshim's public HCS schema v1, and drives the container with the
// same verbs runhcs has.
//
// The package has two halves:
//
//   - Translate (no build tag) is a pure function from (OCI spec, effective
//     policy) to an HCS v1 container document, the init process document and
//     the HNS endpoint ACLs that carry the egress rules. It makes no Windows
//     call, so it is tested on Linux against golden files in testdata/.
//     hcsshim declares ContainerConfig and hcn declares AclPolicySetting only
//     under GOOS=windows, so this half uses mirror types (schema.go) with the
//     same fields and JSON names; convert_windows.go converts them field by
//     field, which makes the compiler check that the mirrors still match
//     hcsshim whenever the Windows build runs.
//   - The driver (files ending in _windows.go) creates, starts and stops the
//     container with hcsshim.CreateContainer, Start, CreateProcess, Shutdown
//     and Terminate, keeps state under --root as JSON, applies the ACLs to the
//     container's HNS endpoints with the hcn package and proxies stdio through
//     a per-container shim process reached over a named pipe, as runhcs does.
//
// Only HCS schema v1 is public in hcsshim, so this driver has exactly what v1
// has: process isolation (Argon) and v1 Hyper-V isolation (Xenon, HvPartition
// with a utility VM image). Whatever the policy asks for that v1 cannot
// express is refused with an error naming the rule (fail closed); see
// docs/windows.md for the full mapping.
package hcs
