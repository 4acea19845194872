package hcs

import (
	"fmt"
	"strings"
)

// Windows paths handled as strings: path/filepath follows the build's OS, and
// the translation runs (and is tested) on Linux too.

const pipePrefix = `\\.\pipe\`

// systemDrive is the container's system drive: an image's files live on C:.
const systemDrive = "C:"

// winPath is a normalized Windows path: backslashes, an upper-case drive
// letter, no "." or ".." elements, no trailing backslash (except a drive
// root "C:\"). Named pipes keep their \\.\pipe\ prefix.
type winPath string

// normalizeWinPath accepts C:\x, c:/x, \\?\C:\x, /x and \x (the latter two
// on the container's system drive, so a policy written with POSIX paths
// still names the same place) and \\.\pipe\name. Relative paths and ".."
// escaping the root are errors.
func normalizeWinPath(p string) (winPath, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	s := strings.ReplaceAll(p, "/", `\`)
	if strings.HasPrefix(strings.ToLower(s), strings.ToLower(pipePrefix)) {
		name := s[len(pipePrefix):]
		if name == "" {
			return "", fmt.Errorf("invalid pipe path %q: no pipe name", p)
		}
		return winPath(pipePrefix + name), nil
	}
	s = strings.TrimPrefix(s, `\\?\`)
	var drive, rest string
	switch {
	case len(s) >= 2 && s[1] == ':' && isLetter(s[0]):
		drive = strings.ToUpper(s[:1]) + ":"
		rest = s[2:]
		if rest != "" && rest[0] != '\\' {
			return "", fmt.Errorf("path %q is relative to a drive's current directory; use an absolute path", p)
		}
	case strings.HasPrefix(s, `\\`):
		return "", fmt.Errorf("UNC path %q is not supported here", p)
	case strings.HasPrefix(s, `\`):
		drive, rest = systemDrive, s
	default:
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	var out []string
	for _, el := range strings.Split(rest, `\`) {
		switch el {
		case "", ".":
		case "..":
			if len(out) == 0 {
				return "", fmt.Errorf("path %q escapes the drive root", p)
			}
			out = out[:len(out)-1]
		default:
			out = append(out, el)
		}
	}
	return winPath(drive + `\` + strings.Join(out, `\`)), nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p winPath) isPipe() bool { return strings.HasPrefix(string(p), pipePrefix) }

// within reports whether p is base or lies under it. Windows paths compare
// case-insensitively (NTFS as Windows uses it).
func (p winPath) within(base winPath) bool {
	ps, bs := strings.ToLower(string(p)), strings.ToLower(string(base))
	if ps == bs {
		return true
	}
	if !strings.HasSuffix(bs, `\`) {
		bs += `\`
	}
	return strings.HasPrefix(ps, bs)
}

func (p winPath) equal(q winPath) bool { return strings.EqualFold(string(p), string(q)) }
