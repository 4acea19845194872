//go:build linux

package main

import "testing"

func TestParseTAP(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         string
		plan, n    int
		ok, passed bool
	}{
		{"all ok, plan last", "TAP version 13\nok 1 - a\nok 2 - b\n  ---\n  {\"x\": \"not ok\"}\n  ...\n1..2\n", 2, 2, true, true},
		{"plan first", "TAP version 13\n1..1\nok 1 - a\n", 1, 1, true, true},
		{"a failure", "TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n", 2, 2, false, false},
		{"skip counts as ok", "TAP version 13\nok 1 # SKIP not here\n1..1\n", 1, 1, true, true},
		{"todo failure counts as ok", "TAP version 13\nnot ok 1 - later # TODO x\n1..1\n", 1, 1, true, true},
		{"no plan: crashed", "TAP version 13\nok 1 - a\n", -1, 1, true, false},
		{"two streams: plans add up", "TAP version 13\nok 1 - a\nok 2 - b\n1..2\nTAP version 13\nok 1 - c\n1..1\n", 3, 3, true, true},
		{"second stream without plan", "TAP version 13\nok 1 - a\n1..1\nTAP version 13\nok 1 - c\n", -1, 2, true, false},
		{"1..0 tested nothing", "TAP version 13\n  ---\n  {\"error\": \"x\"}\n  ...\n1..0\n", 0, 0, true, false},
		{"empty output", "", -1, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pts, plan := parseTAP([]byte(tc.in))
			if plan != tc.plan || len(pts) != tc.n {
				t.Fatalf("plan %d, %d points; want %d, %d", plan, len(pts), tc.plan, tc.n)
			}
			r := &result{Points: pts, Plan: plan}
			if got := r.okCount() == len(pts); got != tc.ok {
				t.Errorf("all ok = %v, want %v", got, tc.ok)
			}
			if r.Passed() != tc.passed {
				t.Errorf("Passed() = %v, want %v (%s)", r.Passed(), tc.passed, r.why())
			}
		})
	}
}

func TestPointDescriptions(t *testing.T) {
	pts, _ := parseTAP([]byte("ok 1 - has expected hostname\nnot ok 2 - mounts[0] (/proc) found in order\nok 3 # SKIP linux.gidMappings not set\n1..3\n"))
	want := []string{"has expected hostname", "mounts[0] (/proc) found in order", ""}
	for i, p := range pts {
		if p.Desc != want[i] {
			t.Errorf("point %d: desc %q, want %q", i+1, p.Desc, want[i])
		}
	}
	if !pts[2].Skip {
		t.Error("point 3: want skip")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b`); got != "/tmp/a b" {
		t.Fatalf("got %q", got)
	}
}

// TestWorse: what gets a retry and is listed as a regression.
func TestWorse(t *testing.T) {
	ok := func(desc string) point { return point{OK: true, Desc: desc} }
	bad := func(desc string) point { return point{Desc: desc} }
	passing := &result{Plan: 2, Points: []point{ok("a"), ok("b")}}
	oneBad := &result{Plan: 2, Points: []point{ok("a"), bad("b")}, ExitCode: 1}
	noPlan := &result{Plan: -1, ExitCode: 1}
	for _, c := range []struct {
		name     string
		t, ref   *result
		want     bool
		wantLost int
	}{
		{"both pass", passing, passing, false, 0},
		{"fails where the reference passes", oneBad, passing, true, 1},
		{"same failure as the reference", oneBad, oneBad, false, 0},
		{"no output where the reference scored points", noPlan, oneBad, true, 1},
		{"better than the reference", passing, oneBad, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := worse(c.t, c.ref); got != c.want {
				t.Errorf("worse = %v, want %v", got, c.want)
			}
			if got := len(lostPoints(c.t, c.ref)); got != c.wantLost {
				t.Errorf("%d lost points, want %d", got, c.wantLost)
			}
		})
	}
}
