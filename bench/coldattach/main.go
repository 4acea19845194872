//go:build linux

// Command coldattach measures the kernel's cgroup attach wait and what
// mxc's warm-up (package linux/cgwarm) does to it, on a kernel of its own:
// run.sh boots the host's Debian kernel in a QEMU guest (the benchmark host
// itself may have favordynmods latched, which removes the wait for good)
// with this program as the workload.
//
// One sample: start a child, then move it into a scratch cgroup with a
// write to cgroup.procs and time that write. "cold": nothing attached for
// -gap before. "warm": mxc-runtime's warm-up write itself (cgwarm.Warm:
// this process's own pid into its own cgroup; the cgroup.procs path is
// looked up once beforehand, which under TCG would take milliseconds
// that it does not take on hardware) is started in the background,
// -lead before the real attach, as mxc-runtime does at start-up (it
// measured ~7 ms ahead of the init's attach in `mxc-runtime run`).
//
//	coldattach -n 10 -lead 7ms -cgroup /sys/fs/cgroup/pids
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mxc.dev/mxc/bench/internal/cgattach"
	"mxc.dev/mxc/linux/cgwarm"
)

func main() {
	n := flag.Int("n", 10, "samples per mode")
	lead := flag.Duration("lead", 7*time.Millisecond, "how long before the real attach the warm-up starts")
	gap := flag.Duration("gap", 250*time.Millisecond, "quiet time before each sample (longer than a grace period)")
	hier := flag.String("cgroup", "/sys/fs/cgroup/pids", "a cgroup hierarchy this process is in the root of")
	flag.Parse()
	dir := filepath.Join(*hier, fmt.Sprintf("coldattach-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "coldattach:", err)
		os.Exit(1)
	}
	defer os.Remove(dir)
	own := cgwarm.ProcsFile()
	if own == "" {
		fmt.Fprintln(os.Stderr, "coldattach: no cgroup.procs of our own cgroup found")
		os.Exit(1)
	}
	res := map[string][]float64{}
	for i := 0; i < *n; i++ {
		for _, mode := range []string{"cold", "warm"} {
			time.Sleep(*gap)
			d, err := sample(dir, own, mode == "warm", *lead)
			if err != nil {
				fmt.Fprintln(os.Stderr, "coldattach:", err)
				os.Exit(1)
			}
			res[mode] = append(res[mode], d)
		}
	}
	for _, mode := range []string{"cold", "warm"} {
		s := res[mode]
		sort.Float64s(s)
		var parts []string
		for _, v := range s {
			parts = append(parts, fmt.Sprintf("%.1f", v))
		}
		fmt.Printf("%s: median %.2f ms of %d (%s)\n", mode, s[len(s)/2], len(s), strings.Join(parts, " "))
	}
}

// sample returns how long the write moving a fresh child into dir took,
// in ms; with warm, cgwarm.Warm(own) starts lead before it.
func sample(dir, own string, warm bool, lead time.Duration) (float64, error) {
	if warm {
		go cgwarm.Warm(own)
	}
	time.Sleep(lead)
	d, err := cgattach.Time(dir)
	return float64(d.Microseconds()) / 1000, err
}
