package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// logToStderr is true when --log was not given: fatal then prints the error
// once, instead of once through logrus and once more to stderr.
var logToStderr = true

// before configures logging the way runc does: --log FILE receives logrus
// output; --log-format json writes JSON lines that containerd and docker
// read back from BUNDLE/log.json to show the user why a verb failed.
func before(c *cli.Context) error {
	if c.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := c.String("log-format"); f {
	case "", "text":
	case "json":
		logrus.SetFormatter(new(logrus.JSONFormatter))
	default:
		return fmt.Errorf("invalid log-format: %q (want text or json)", f)
	}
	logrus.SetFormatter(quietFormatter{logrus.StandardLogger().Formatter})
	if path := c.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		logrus.SetOutput(f)
		logToStderr = false
	}
	return beforeOS(c)
}

// funcHookWarning is what libcontainer logs for each function hook when it
// writes the configuration into the init's pipe and the state file.
const funcHookWarning = "cannot serialize hook of type configs.FuncHook, skipping"

// quietFormatter drops funcHookWarning. The only function hooks are mxc's
// own (package initmount; config.json can only give command hooks), and they
// are meant to run in this process only, so the warning would be noise in
// every client's log for every container.
type quietFormatter struct{ logrus.Formatter }

func (f quietFormatter) Format(e *logrus.Entry) ([]byte, error) {
	if e.Level == logrus.WarnLevel && e.Message == funcHookWarning {
		return nil, nil
	}
	return f.Formatter.Format(e)
}

// exitCoder lets a verb choose its exit status (run returns the container's).
type exitCoder interface{ ExitCode() int }

type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitCode() int { return int(e) }

// fatal reports err and exits. Errors go to the log (JSON when asked) and to
// stderr, like runc, so that every client can show them.
func fatal(err error) {
	var ec exitCoder
	if errors.As(err, &ec) {
		if _, silent := err.(exitStatus); silent {
			os.Exit(ec.ExitCode())
		}
	}
	logrus.Error(err)
	if !logToStderr {
		fmt.Fprintln(os.Stderr, "mxc-runtime:", err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, "Run 'mxc-runtime --help' for usage.")
	}
	if ec != nil {
		os.Exit(ec.ExitCode())
	}
	os.Exit(1)
}
