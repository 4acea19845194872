// Package argv reads mxc-runtime's verb from its raw command line, for the
// few things that must start before the CLI is parsed (package init time):
// warm-ups that overlap the runtime's own start-up.
package argv

import "strings"

// globalsWithValue are mxc-runtime's global flags that take a value as the
// next argument (see cmd/mxc-runtime/main.go).
var globalsWithValue = map[string]bool{
	"--log": true, "--log-format": true, "--root": true, "--rootless": true, "--config": true,
	"-log": true, "-log-format": true, "-root": true, "-rootless": true, "-config": true,
}

// Verb returns the verb in args (os.Args: the program, global flags, the
// verb, its arguments), or "" when there is none.
func Verb(args []string) string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if strings.HasPrefix(a, "-") {
			if globalsWithValue[a] {
				i++
			}
			continue
		}
		return a
	}
	return ""
}
