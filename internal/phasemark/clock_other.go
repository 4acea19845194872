//go:build !linux

package phasemark

import "time"

func monotonic() int64 { return int64(time.Since(base)) }
