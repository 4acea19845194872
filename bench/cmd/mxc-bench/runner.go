//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"mxc.dev/mxc/internal/reaper"
)

// Result is one scenario's samples per runtime.
type Result struct {
	Scenario *Scenario
	Samples  map[string][]time.Duration // runtime name -> timed iterations
	NA       map[string]bool            // runtime cannot run the scenario
}

// selected reports whether the scenario (or figure) key is selected by -only.
func (b *Bench) selected(key string) bool {
	return b.Opts.Only == nil || b.Opts.Only.MatchString(key)
}

// RunAll runs every selected scenario. Per iteration each runtime runs
// once; the order rotates every iteration.
func (b *Bench) RunAll(ctx context.Context) ([]*Result, error) {
	var out []*Result
	for _, sc := range scenarios {
		if !b.selected(sc.Key) || (sc.Enabled != nil && !sc.Enabled(b)) {
			continue
		}
		fmt.Fprintf(os.Stderr, "%-22s n=%d warmup=%d ...", sc.Title, b.Opts.N, b.Opts.Warmup)
		start := time.Now()
		res, err := b.runScenario(ctx, sc)
		if err != nil {
			fmt.Fprintln(os.Stderr, " failed")
			return nil, fmt.Errorf("%s: %w", sc.Key, err)
		}
		var parts []string
		for _, rt := range b.Runtimes {
			if s := res.Samples[rt.Name]; len(s) > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1f ms", rt.Name, ms(Summarize(s).Median)))
			}
		}
		fmt.Fprintf(os.Stderr, " %s (%s)\n", strings.Join(parts, ", "), time.Since(start).Round(time.Second))
		out = append(out, res)
	}
	if len(out) == 0 && !b.selected("density") && !b.selected("memory") {
		return nil, errors.New("no scenario selected")
	}
	b.loadAvg[1] = loadAvg()
	return out, nil
}

func (b *Bench) runScenario(ctx context.Context, sc *Scenario) (res *Result, err error) {
	res = &Result{Scenario: sc, Samples: map[string][]time.Duration{}, NA: map[string]bool{}}
	states := map[string]any{}
	var ready []*Runtime
	defer func() {
		for _, rt := range ready {
			if sc.Teardown != nil {
				if terr := sc.Teardown(context.Background(), b, rt, states[rt.Name]); terr != nil {
					err = errors.Join(err, fmt.Errorf("teardown %s: %w", rt.Name, terr))
				}
			}
			if left := rt.leftovers(); len(left) > 0 && err == nil {
				err = fmt.Errorf("%s left containers behind: %v", rt.Name, left)
			}
		}
		reaper.All()
	}()
	for _, rt := range b.Runtimes {
		if sc.Setup != nil {
			st, err := sc.Setup(ctx, b, rt)
			if errors.Is(err, ErrUnsupported) {
				res.NA[rt.Name] = true
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("setup %s: %w", rt.Name, err)
			}
			states[rt.Name] = st
		}
		ready = append(ready, rt)
	}
	total := b.Opts.Warmup + b.Opts.N
	for i := 0; i < total; i++ {
		for j := range ready {
			rt := ready[(i+j)%len(ready)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := sc.Once(ctx, b, rt, states[rt.Name], i)
			reaper.All()
			if err != nil {
				return nil, err
			}
			if i >= b.Opts.Warmup {
				res.Samples[rt.Name] = append(res.Samples[rt.Name], d)
			}
		}
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
