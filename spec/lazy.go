package spec

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use. Package init runs in every
// mxc-runtime process, including the container init re-exec and the agent's
// last step, where these are never needed; compiling them eagerly cost about
// 1.5 ms of start-up per process.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
