//go:build linux

// Package oomguard keeps mxc's enforcement helpers out of the OOM killer's
// reach. The policy monitor (the timeout, oom and fs.deny events, the
// egress gate it hosts) and a gate of its own are small, but when the
// host runs out of memory the kernel may still pick one; a killed monitor
// stops watching the timeout until something restarts it (the network
// fails closed, the timeout does not). Agents are what exhausts memory,
// not their watchdogs, so the helpers ask to be nearly the last victims.
package oomguard

import (
	"os"
	"strconv"
)

// Score is the oom_score_adj the helpers take: as low as a process can
// go short of -1000 (never killed), which would let a leak in a helper
// take the host down instead.
const Score = -999

// Protect sets the calling process's oom_score_adj to Score. Lowering it
// needs CAP_SYS_RESOURCE (the runtime runs as root); without it, or on a
// kernel without the file, the score stays as inherited, which is not an
// error worth failing a helper for.
func Protect() {
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(Score)), 0)
}
