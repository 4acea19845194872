// Command auditwatch subscribes to containerd's events API and prints each
// mxc audit event (topic /mxc/audit, published by containerd-shim-mxc-v2) as
// one JSON line: the audit.Event plus the containerd namespace. The client
// tests use it because `ctr events` skips event types it does not know.
//
//	auditwatch -address /run/containerd/containerd.sock [-namespace k8s.io]
//	           [-container ID] [-count N] [-until-kinds K1,K2] [-timeout 30s]
//
// It exits 0 once it has printed -count events (0: run until the timeout),
// or, with -until-kinds, once it has printed an event of each kind listed;
// 1 when the timeout comes first.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/shim"
)

func main() {
	addr := flag.String("address", "/run/containerd/containerd.sock", "containerd gRPC socket")
	ns := flag.String("namespace", "", "only events of this containerd namespace")
	container := flag.String("container", "", "only events of this container id")
	count := flag.Int("count", 1, "exit after this many events (0: until -timeout)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	ready := flag.String("ready", "", "create this file once subscribed")
	untilKinds := flag.String("until-kinds", "", "comma-separated kinds: exit once one event of each was printed (-count then ignored)")
	flag.Parse()
	var kinds []string
	if *untilKinds != "" {
		kinds = strings.Split(*untilKinds, ",")
		*count = 0
	}
	if err := run(*addr, *ns, *container, *count, kinds, *timeout, *ready); err != nil {
		fmt.Fprintln(os.Stderr, "auditwatch:", err)
		os.Exit(1)
	}
}

func run(addr, ns, container string, count int, kinds []string, timeout time.Duration, ready string) error {
	missing := map[string]bool{}
	for _, k := range kinds {
		missing[k] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	defer conn.Close()
	filter := "topic==" + strconv.Quote(shim.AuditTopic)
	if ns != "" {
		filter += ",namespace==" + strconv.Quote(ns)
	}
	stream, err := eventsapi.NewEventsClient(conn).Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: []string{filter}})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// containerd registers the subscription when the request arrives but may send
	// headers only with the first event: give it a moment rather than wait for them
	hdr := make(chan error, 1)
	go func() { _, err := stream.Header(); hdr <- err }()
	select {
	case err := <-hdr:
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	case <-time.After(time.Second):
	}
	if ready != "" {
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	for n := 0; (count == 0 && (len(kinds) == 0 || len(missing) > 0)) || n < count; {
		env, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				if len(missing) > 0 {
					return fmt.Errorf("timeout: no event of kind(s) %v", keys(missing))
				}
				if count == 0 {
					return nil
				}
				return fmt.Errorf("timeout after %d of %d events", n, count)
			}
			return fmt.Errorf("receive: %w", err)
		}
		ev, err := shim.DecodeAuditEvent(env.GetEvent())
		if err != nil {
			return err
		}
		if container != "" && ev.Container != container {
			continue
		}
		if err := enc.Encode(struct {
			Namespace string `json:"namespace"`
			Topic     string `json:"topic"`
			audit.Event
		}{env.GetNamespace(), env.GetTopic(), ev}); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		n++
		delete(missing, ev.Kind)
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
