//go:build linux

package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	line := "4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	for _, tc := range []struct {
		name, in string
		want     Stat
		err      bool
	}{
		{"comm with spaces and parentheses", line, Stat{State: 'S', Flags: 4194560, Start: 987654}, false},
		{"exiting zombie", "1 (x) Z 0 1 1 0 -1 4194308 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0", Stat{State: 'Z', Flags: 4194308, Start: 55}, false},
		{"no parenthesis", "1 x S 0", Stat{}, true},
		{"too short", "1 (x) S 0 1", Stat{}, true},
		{"bad start", "1 (x) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 zz", Stat{}, true},
		{"empty", "", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
	for _, c := range []struct {
		stat          string
		exiting, gone bool
	}{
		// init of a pid namespace in zap_pid_ns_processes: PF_EXITING
		// (0x4) set, still S while it waits for the namespace's tasks
		{"4242 (sleep) S 1 4242 4242 0 -1 4210948 120 0 0 0 0 0 0 0 20 0 1 0 1000 0 0", true, false},
		{"4242 (sleep) S 1 4242 4242 0 -1 4210944 120 0 0 0 0 0 0 0 20 0 1 0 1000 0 0", false, false},
		{"1 (x) Z 0 1 1 0 -1 4194308 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0", true, true},
	} {
		s, err := Parse([]byte(c.stat))
		if err != nil || s.Exiting() != c.exiting || s.Gone() != c.gone {
			t.Errorf("%q: %+v %v: Exiting %v, Gone %v; want %v, %v", c.stat, s, err, s.Exiting(), s.Gone(), c.exiting, c.gone)
		}
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil || s.Start == 0 || s.Gone() || s.Exiting() {
		t.Fatalf("Read(self) = %+v, %v", s, err)
	}
	if StartTime(os.Getpid()) != s.Start {
		t.Fatal("StartTime differs from Read")
	}
	if StartTime(-1) != 0 {
		t.Fatal("StartTime of no process is not 0")
	}
	if !Alive(os.Getpid(), s.Start) || Alive(os.Getpid(), s.Start+1) || Alive(-1, s.Start) {
		t.Fatal("Alive: this process with its start time, not with another, and no process never")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b) // never panics
	})
}
