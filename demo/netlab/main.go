//go:build linux

// Command netlab is the little internet of demo/net-demo.sh: the egress
// tests' lab (integration/egress/lab) as a process of its own. It builds
// an "internet" network namespace holding web, UDP and DNS servers on
// documentation addresses (allowed.test is 203.0.113.10, denied.test
// 203.0.113.20, the resolver 203.0.113.53) and a "host" namespace linked
// to it, where the demo runs mxc-runtime; it adds an HTTP server on port
// 8080 of every address. It writes the namespaces' names as JSON to
// -ready, serves until SIGTERM, SIGINT or the death of its parent, and
// then removes everything it made.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/egress/lab"
)

func main() {
	// The lab's clients are this binary too.
	if len(os.Args) > 1 && os.Args[1] == lab.ClientVerb {
		os.Exit(lab.ClientMain(os.Args[2:]))
	}
	ready := flag.String("ready", "", "write the lab's description (JSON) here once it serves")
	flag.Parse()
	if err := run(*ready); err != nil {
		fmt.Fprintln(os.Stderr, "netlab:", err)
		os.Exit(1)
	}
}

func run(ready string) error {
	// Whatever way the demo script ends, the lab goes with it.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0)
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer stop()
	if os.Getppid() == 1 {
		return fmt.Errorf("parent already gone")
	}
	l, err := lab.New()
	if err != nil {
		return err
	}
	defer l.Close()
	var ln net.Listener
	if err := lab.InNetNS(l.Inet, func() error {
		var err error
		ln, err = net.Listen("tcp", ":8080")
		return err
	}); err != nil {
		return fmt.Errorf("web server: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s (you asked for %s)\n", r.Context().Value(http.LocalAddrContextKey), r.Host)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	desc, _ := json.Marshal(map[string]string{
		"inet": l.Inet, "host": l.Host, "prefix": l.Prefix, "resolver": lab.UpstreamDNS,
	})
	if ready != "" {
		if err := os.WriteFile(ready, append(desc, '\n'), 0o600); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}
