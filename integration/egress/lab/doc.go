// Package lab builds a little internet out of network namespaces for the
// egress tests and benchmarks: an "internet" namespace holding every server
// address (TCP, UDP echo, an upstream DNS server with test zones and a rogue
// resolver), a "host" namespace standing in for the host (where the DNS gate
// and slirp4netns run and reach the upstream), and container namespaces
// linked to the internet by veth pairs. Only documentation address ranges
// are used and nothing is routed outside the namespaces the lab made; Close
// removes them all. Linux-only (see lab_linux.go).
package lab
