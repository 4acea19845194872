package phasemark

import "golang.org/x/sys/unix"

// monotonic is CLOCK_MONOTONIC in ns: the same clock in every process.
func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
