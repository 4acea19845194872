package spec

import "strings"

// Hand-written matchers for the few patterns the policy checks. They were
// regular expressions, compiled on first use; in a policy `create` that was
// ~0.6 ms of CPU (the compiles and the page faults of regexp's code) for
// patterns that are a loop over bytes. match_test.go checks each against
// its regular expression, also as a fuzz target.

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isName matches ^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$ (policy and
// reference names: 1-253 characters, DNS-subdomain-like).
func isName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := isLower(c) || isDigit(c)
		if i == 0 || i == len(s)-1 {
			if !alnum {
				return false
			}
		} else if !alnum && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isLabel matches ^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$ (one label of a
// host name: 1-63 characters).
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := isLower(c) || isDigit(c) || c == '_'
		if !ok && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// hasDrivePrefix matches ^[A-Za-z]:\\ (a Windows path such as C:\work).
func hasDrivePrefix(s string) bool {
	return len(s) >= 3 && (isLower(s[0]) || s[0] >= 'A' && s[0] <= 'Z') && s[1] == ':' && s[2] == '\\'
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isSizeNumber matches ^[0-9]{1,30}(\.[0-9]{1,30})?$ (the number of a
// byte size such as 1.5Gi).
func isSizeNumber(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	return digits(whole, 30) && (!dot || digits(frac, 30))
}

// isRuntimeDir matches ^/run/user/[0-9]+$ (XDG_RUNTIME_DIR).
func isRuntimeDir(p string) bool {
	uid, ok := strings.CutPrefix(p, "/run/user/")
	return ok && digits(uid, len(uid))
}

// isSessionBus matches ^/run/user/[0-9]+/bus$ (the D-Bus session socket).
func isSessionBus(p string) bool {
	dir, ok := strings.CutSuffix(p, "/bus")
	return ok && isRuntimeDir(dir)
}

// isSSHAgent matches ^/tmp/ssh-[^/]+/agent\.[0-9]+$ (ssh-agent's socket).
func isSSHAgent(p string) bool {
	rest, ok := strings.CutPrefix(p, "/tmp/ssh-")
	if !ok {
		return false
	}
	dir, file, ok := strings.Cut(rest, "/")
	if !ok || dir == "" {
		return false
	}
	pid, ok := strings.CutPrefix(file, "agent.")
	return ok && digits(pid, len(pid))
}
