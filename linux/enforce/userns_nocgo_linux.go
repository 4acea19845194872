//go:build linux && !cgo

package enforce

// usernsFD is usernsFDExec where the runtime is built without cgo.
func usernsFD(r idRange) (int, error) { return usernsFDExec(r) }
