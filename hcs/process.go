package hcs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ProcessFor maps an OCI process onto an HCS v1 process document. The
// command line is process.commandLine when set, else process.args joined
// with Windows quoting (the rules CommandLineToArgvW and the C runtime
// parse back into the same arguments).
func ProcessFor(p *specs.Process) (*ProcessConfig, error) {
	if p == nil {
		return nil, errors.New("missing: a container needs a process")
	}
	cmd := p.CommandLine
	if cmd == "" {
		if len(p.Args) == 0 {
			return nil, errors.New("args: empty (and no commandLine)")
		}
		cmd = ComposeCommandLine(p.Args)
	}
	env := make(map[string]string, len(p.Env))
	for i, kv := range p.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("env[%d]: %q is not NAME=value", i, kv)
		}
		env[k] = v
	}
	pc := &ProcessConfig{
		CommandLine:      cmd,
		User:             p.User.Username,
		WorkingDirectory: p.Cwd,
		Environment:      env,
		EmulateConsole:   p.Terminal,
		CreateStdInPipe:  true,
		CreateStdOutPipe: true,
		// A console carries stdout and stderr on one stream.
		CreateStdErrPipe: !p.Terminal,
	}
	if len(env) == 0 {
		pc.Environment = nil
	}
	if p.Terminal && p.ConsoleSize != nil {
		pc.ConsoleSize = [2]uint{p.ConsoleSize.Height, p.ConsoleSize.Width}
	}
	return pc, nil
}

// ComposeCommandLine joins args into a Windows command line, quoting each as
// syscall.EscapeArg does (which is Windows-only in the standard library).
func ComposeCommandLine(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(escapeArg(a))
	}
	return b.String()
}

// escapeArg quotes s so that the Microsoft C runtime's argv parser returns
// it unchanged: backslashes are literal unless they precede a double quote.
func escapeArg(s string) string {
	if s == "" {
		return `""`
	}
	needsQuote := strings.ContainsAny(s, " \t")
	if !needsQuote && !strings.ContainsAny(s, `"\`) {
		return s
	}
	if !needsQuote && !strings.Contains(s, `"`) {
		return s // backslashes alone are literal
	}
	var b strings.Builder
	if needsQuote {
		b.WriteByte('"')
	}
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			// Double the backslashes before a quote, then escape the quote.
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	if needsQuote {
		// Backslashes before the closing quote must be doubled.
		b.WriteString(strings.Repeat(`\`, slashes))
		b.WriteByte('"')
	}
	return b.String()
}

// splitCommandLine parses a command line as the Microsoft C runtime does for
// argv[1:] (used to check ComposeCommandLine; mxc never parses user input
// with it).
func splitCommandLine(s string) []string {
	var args []string
	var cur strings.Builder
	inArg, inQuote := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case (c == ' ' || c == '\t') && !inQuote:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
			i++
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			inArg = true
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					i++
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
		case c == '"':
			inArg = true
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				// "" inside quotes is a literal quote (post-2008 CRT rule).
				cur.WriteByte('"')
				i += 2
				continue
			}
			inQuote = !inQuote
			i++
		default:
			inArg = true
			cur.WriteByte(c)
			i++
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// Signal is what kill can do to a Windows container: HCS v1 has no signal
// delivery, only a graceful shutdown and a forced termination.
type Signal int

const (
	// SignalKill terminates (TerminateProcess / HCS Terminate).
	SignalKill Signal = iota + 1
	// SignalTerm asks for a graceful shutdown (HCS Shutdown: CTRL_SHUTDOWN_EVENT to the container's processes).
	SignalTerm
)

// ParseSignal accepts the names and numbers runc takes for the signals HCS
// can deliver: KILL (9) terminates; TERM (15) and INT (2) shut down
// gracefully. Others are refused: HCS v1 cannot deliver them.
func ParseSignal(s string) (Signal, error) {
	if s == "" {
		return SignalTerm, nil
	}
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	if n, err := strconv.Atoi(name); err == nil {
		switch n {
		case 9:
			return SignalKill, nil
		case 15, 2:
			return SignalTerm, nil
		}
		return 0, fmt.Errorf("signal %d: HCS schema v1 delivers only KILL (9), TERM (15) and INT (2) to Windows containers", n)
	}
	switch name {
	case "KILL":
		return SignalKill, nil
	case "TERM", "INT":
		return SignalTerm, nil
	}
	return 0, fmt.Errorf("signal %q: HCS schema v1 delivers only KILL, TERM and INT to Windows containers", s)
}
