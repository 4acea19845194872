//go:build linux

package main

import (
	"debug/elf"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		in               []time.Duration
		med, p90, lo, hi time.Duration
	}{
		{"one", ms(5), 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{"odd unsorted", ms(9, 1, 5), 5 * time.Millisecond, 9 * time.Millisecond, time.Millisecond, 9 * time.Millisecond},
		{"even: mean of the middle two", ms(4, 1, 3, 2), 2500 * time.Microsecond, 4 * time.Millisecond, time.Millisecond, 4 * time.Millisecond},
		{"p90 nearest rank of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 5500 * time.Microsecond, 9 * time.Millisecond, time.Millisecond, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.in)
			if s.Median != tc.med || s.P90 != tc.p90 || s.Min != tc.lo || s.Max != tc.hi || s.N != len(tc.in) {
				t.Fatalf("Summarize(%v) = %+v", tc.in, s)
			}
		})
	}
	if s := Summarize(nil); s.N != 0 {
		t.Fatalf("empty: %+v", s)
	}
}

func TestTableRatios(t *testing.T) {
	st := func(m int) *Stat { return &Stat{N: 1, Median: time.Duration(m) * time.Millisecond} }
	tab := Table{Runtimes: []string{"mxc", "runc", "crun"}, Rows: []Row{
		{Key: "run", Title: "run /bin/true", Stats: []*Stat{st(30), st(60), st(15)}},
		{Key: "x", Title: "policy", Stats: []*Stat{st(30), nil, st(10)}},
	}}
	if r := tab.Rows[0].Ratio(1); r != 0.5 {
		t.Fatalf("mxc/runc = %v", r)
	}
	if r := tab.Rows[0].Ratio(2); r != 2 {
		t.Fatalf("mxc/crun = %v", r)
	}
	md := tab.Markdown()
	for _, want := range []string{"| run /bin/true | 30.0 | 0.0 | 60.0 | 0.0 | 15.0 | 0.0 | 0.50 | 2.00 |", "| policy | 30.0 | 0.0 | n/a | n/a | 10.0 | 0.0 | n/a | 3.00 |", "mxc/runc", "mxc/crun"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDocInsert(t *testing.T) {
	doc := docSkeleton
	var err error
	for _, r := range []string{"| old |\n", "| new |\n"} {
		if doc, err = insertHistory(doc, r); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(doc, historyHeader+"| new |\n| old |\n") {
		t.Fatalf("history rows not newest first under the header:\n%s", doc)
	}
	for _, s := range []string{"### first\n", "### second\n"} {
		if doc, err = insertAfter(doc, markRuns, s); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Index(doc, "### second") > strings.Index(doc, "### first") {
		t.Fatalf("runs not newest first:\n%s", doc)
	}
	if strings.Count(doc, historyHeader) != 1 {
		t.Fatalf("history header duplicated:\n%s", doc)
	}
	// A doc whose marker has no table under it gets one.
	d2, err := insertHistory("x\n"+markHistory+"\ny\n", "| r |\n")
	if err != nil || !strings.Contains(d2, markHistory+"\n"+historyHeader+"| r |\ny\n") {
		t.Fatalf("table not started: %v\n%s", err, d2)
	}
	if _, err := insertAfter("no markers", markRuns, "x"); err == nil {
		t.Fatal("missing marker: want error")
	}
}

// A trimmed `perf trace` of `mxc-runtime run` (perf 6.1 format): the
// boundaries the profile looks for, out of order as perf prints them.
const perfSample = `     0.000 (         ): mxc-runtime/100 sched:sched_process_exec(filename: "/usr/bin/mxc-runtime", pid: 100 (mxc-runtime), old_pid: 100 (mxc-runtime))
         ? (         ): mxc-runtime/100  ... [continued]: execve())                                           = 0
     2.000 (         ): mxc-runtime/100 sched:sched_process_fork(parent_comm: "mxc-runtime", parent_pid: 100 (mxc-runtime), child_comm: "mxc-runtime", child_pid: 101 (mxc-runtime))
     8.000 ( 0.020 ms): mxc-runtime/101 fsopen(fs_name: 0x9f516c, flags: CLOEXEC)                             = 21
    10.500 (         ): 6/110 sched:sched_process_exec(filename: "/proc/self/fd/6", pid: 110 (6), old_pid: 110 (6))
    10.000 ( 0.358 ms): 6/110  ... [continued]: execve())                                           = 0
    11.000 ( 0.095 ms): mxc-runtime/101 mkdirat(dfd: CWD, pathname: 0x273cc920, mode: IRUGO|IXUGO|IWUSR)      = 0
    11.200 ( 6.000 ms): mxc-runtime/101 write(fd: 17, buf: 0xebd2752847c, count: 4)                           = 4
    18.000 (         ): runc:[0:PARENT/110 sched:sched_process_fork(parent_comm: "runc:[0:PARENT]", parent_pid: 110 (runc:[0:PARENT]), child_comm: "runc:[0:PARENT]", child_pid: 111 (runc:[0:PARENT]))
    19.000 (         ): runc:[1:CHILD]/111 sched:sched_process_fork(parent_comm: "runc:[1:CHILD]", parent_pid: 111 (runc:[1:CHILD]), child_comm: "runc:[1:CHILD]", child_pid: 112 (runc:[1:CHILD]))
    20.000 (         ): runc:[0:PARENT/110 sched:sched_process_exit(comm: "runc:[0:PARENT]", pid: 110 (runc:[0:PARENT]), prio: 120, group_dead: 1)
    19.500 (         ): runc:[1:CHILD]/111 sched:sched_process_exit(comm: "runc:[1:CHILD]", pid: 111 (runc:[1:CHILD]), prio: 120, group_dead: 1)
    25.000 ( 0.018 ms): runc:[2:INIT]/112 mount(dev_name: 0x2887bafa, dir_name: 0x3c312887bafc, type: 0x3c312887bafe, flags: REC|SLAVE) = 0
    26.000 ( 0.011 ms): runc:[2:INIT]/112 mount(dev_name: 0x2887baff, dir_name: 0x3c312887bb20, type: 0x3c312887bb2f, flags: PRIVATE) = -1 EINVAL (Invalid argument)
    30.000 ( 0.128 ms): runc:[2:INIT]/112 pivot_root(new_root: 0x3c3128819440, put_old: 0x3c3128819442)         = 0
    40.000 (         ): runc:[2:INIT]/112 execve(filename: 0x28819c80, argv: 0x3c312874bd70, envp: 0x3c3128742ca0) ...
    41.000 (         ): true/112 sched:sched_process_exec(filename: "/bin/true", pid: 112 (true), old_pid: 112 (true))
    42.000 (         ): true/112 sched:sched_process_exit(comm: "true", pid: 112 (true), prio: 120, group_dead: 1)
    50.000 (         ): mxc-runtime/101 sched:sched_process_exit(comm: "mxc-runtime", pid: 101 (mxc-runtime), prio: 120)
    50.100 (         ): mxc-runtime/100 sched:sched_process_exit(comm: "mxc-runtime", pid: 100 (mxc-runtime), prio: 120, group_dead: 1)
`

func TestSplitPhases(t *testing.T) {
	evs := parsePerf([]byte(perfSample))
	b := splitPhases(evs, "/bin/true", "mxc-runtime")
	if !b.ok {
		t.Fatalf("boundaries not found: %+v", b)
	}
	want := map[string]float64{
		"setup": 10.5, "cgroups": 7.5, "nsexec": 2, "initgo": 5, "mounts": 5,
		"finish": 11, "true": 1, "teardown": 8.1, "total": 50.1,
		"setup.pre": 8, "setup.clone": 2.5,
	}
	for k, v := range want {
		if got := b.phase[k]; got < v-1e-9 || got > v+1e-9 {
			t.Errorf("phase %s = %v, want %v", k, got, v)
		}
	}
	if b.cgMkdirs != 1 || b.cgWriteMS != 6 || b.cgSlowestMS != 6 || b.containerMnts != 2 {
		t.Errorf("details: %+v", b)
	}
	if _, found := b.phase["reexec"]; found {
		t.Error("no second init exec in the sample, yet a reexec phase")
	}
	// runc 1.1: the init execs twice (memfd clone); cgroups starts at the second.
	runc := strings.Replace(perfSample, "    11.000 (", `    10.800 (         ): runc:[0:PARENT/110 sched:sched_process_exec(filename: "/proc/self/fd/7", pid: 110 (runc:[0:PARENT]), old_pid: 110 (runc))
    11.000 (`, 1)
	br := splitPhases(parsePerf([]byte(runc)), "/bin/true", "mxc-runtime")
	if !br.ok || br.phase["reexec"] < 0.3-1e-9 || br.phase["reexec"] > 0.3+1e-9 || br.phase["cgroups"] < 7.2-1e-9 || br.phase["cgroups"] > 7.2+1e-9 {
		t.Errorf("runc-style re-exec: %+v", br.phase)
	}
	// With a policy: the id-mapped rootfs' user namespace helper and the
	// policy monitor are exec'd (and the monitor starts threads) before the
	// init; the init execs mxc's last step, then /bin/true.
	policy := strings.Replace(perfSample, "    10.500 (", `     4.000 (         ): exe/105 sched:sched_process_exec(filename: "/proc/self/exe", pid: 105 (exe), old_pid: 105 (exe))
     4.100 (         ): exe/105 sched:sched_process_exit(comm: "exe", pid: 105 (exe), prio: 120, group_dead: 1)
     6.000 (         ): mxc-runtime/106 sched:sched_process_exec(filename: "/usr/bin/mxc-runtime", pid: 106 (mxc-runtime), old_pid: 106 (mxc-runtime))
     7.000 (         ): mxc-runtime/106 sched:sched_process_fork(parent_comm: "mxc-runtime", parent_pid: 106 (mxc-runtime), child_comm: "mxc-runtime", child_pid: 107 (mxc-runtime))
    10.500 (`, 1)
	policy = strings.Replace(policy, "    41.000 (", `    39.000 (         ): 3/112 sched:sched_process_exec(filename: "/proc/self/fd/3", pid: 112 (3), old_pid: 112 (3))
    41.000 (`, 1)
	bp := splitPhases(parsePerf([]byte(policy)), "/bin/true", "mxc-runtime")
	if !bp.ok || bp.phase["setup"] != 10.5 || bp.phase["setup.monitor"] != 6 || bp.phase["finish.agent"] != 2 || bp.phase["cgroups"] != 7.5 {
		t.Errorf("with a policy: %+v", bp.phase)
	}
	if _, found := b.phase["finish.agent"]; found {
		t.Error("no last step in the plain sample, yet a finish.agent phase")
	}
	// A runtime without an init re-exec (crun) gets the total only.
	crun := splitPhases(parsePerf([]byte(`     0.000 crun/5 sched:sched_process_exec(filename: "/usr/bin/crun", pid: 5 (crun), old_pid: 5 (crun))
     3.000 true/6 sched:sched_process_exec(filename: "/bin/true", pid: 6 (true), old_pid: 6 (true))
     4.000 true/6 sched:sched_process_exit(comm: "true", pid: 6 (true), prio: 120)
     9.000 crun/5 sched:sched_process_exit(comm: "crun", pid: 5 (crun), prio: 120)
`)), "/bin/true", "crun")
	if crun.ok || crun.phase["total"] != 9 {
		t.Errorf("crun: %+v", crun)
	}
}

func TestPerfScriptInclusive(t *testing.T) {
	out := "mxc-runtime \n" +
		"\tffffffff8225a6c1 do_syscall_64\n" +
		"\t          4b0d8e runtime.mallocgc+0x2e\n" +
		"\t          4b0000 main.main\n" +
		"\n" +
		"mxc-runtime \n" +
		"\t          4b0000 main.main\n" +
		"\t          4b0000 main.main\n" + // recursion counts once
		"\n" +
		"runc:[2:INIT] \n" +
		"\t           10 [unknown]\n" +
		"\n"
	st := &symtab{addr: []uint64{0x401000, 0x402000}, name: []string{"pkg.A", "pkg.B"}}
	st.segs = append(st.segs, elfSeg(0x0, 0x400000, 0x10000))
	total, by := inclusive(parsePerfScript([]byte(out), st))
	if total["mxc-runtime"] != 2 || total["runc:[2:INIT]"] != 1 {
		t.Fatalf("totals %v", total)
	}
	if by["mxc-runtime"]["main.main"] != 2 || by["mxc-runtime"]["runtime.mallocgc"] != 1 {
		t.Fatalf("inclusive %v", by["mxc-runtime"])
	}
	// offset 0x1010 in the file -> address 0x401010 -> pkg.A
	if st.lookupUnknown(0x1010) != "pkg.A" || st.lookupUnknown(0x2001) != "pkg.B" {
		t.Fatalf("offset lookup: %q %q", st.lookupUnknown(0x1010), st.lookupUnknown(0x2001))
	}
}

func elfSeg(off, vaddr, size uint64) elf.ProgHeader {
	return elf.ProgHeader{Type: elf.PT_LOAD, Off: off, Vaddr: vaddr, Filesz: size}
}
