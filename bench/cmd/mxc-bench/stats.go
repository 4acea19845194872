//go:build linux

package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Stat summarises one runtime's samples of one scenario.
type Stat struct {
	N                     int
	Median, P90, Min, Max time.Duration
}

// Summarize: median (mean of the middle two for even n), p90 by nearest
// rank, min and max.
func Summarize(samples []time.Duration) Stat {
	if len(samples) == 0 {
		return Stat{}
	}
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.9*float64(n))) - 1
	return Stat{N: n, Median: med, P90: s[rank], Min: s[0], Max: s[n-1]}
}

// Table is the benchmark's result in rows, one per scenario.
type Table struct {
	Runtimes []string // column order; [0] is the subject of the ratios
	Rows     []Row
}

// Row is one scenario; Stats[i] is nil where runtime i has no figure.
type Row struct {
	Key, Title string
	Stats      []*Stat
}

// Ratio returns subject median / runtime i median (0 if unknown).
func (r Row) Ratio(i int) float64 {
	if r.Stats[0] == nil || r.Stats[i] == nil || r.Stats[i].Median == 0 {
		return 0
	}
	return float64(r.Stats[0].Median) / float64(r.Stats[i].Median)
}

// FormatTable turns results into a Table.
func FormatTable(res []*Result, rts []*Runtime) Table {
	t := Table{}
	for _, rt := range rts {
		t.Runtimes = append(t.Runtimes, rt.Name)
	}
	for _, r := range res {
		row := Row{Key: r.Scenario.Key, Title: r.Scenario.Title}
		for _, rt := range rts {
			if s := r.Samples[rt.Name]; len(s) > 0 {
				st := Summarize(s)
				row.Stats = append(row.Stats, &st)
			} else {
				row.Stats = append(row.Stats, nil)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1f", ms(d)) }

func fmtRatio(x float64) string {
	if x == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", x)
}

// header returns the column titles: per runtime median and p90, then the
// subject's ratio to each other runtime.
func (t Table) header() []string {
	h := []string{"operation (ms)"}
	for _, n := range t.Runtimes {
		h = append(h, n+" median", n+" p90")
	}
	for _, n := range t.Runtimes[1:] {
		h = append(h, t.Runtimes[0]+"/"+n)
	}
	return h
}

func (t Table) cells(r Row) []string {
	c := []string{r.Title}
	for _, s := range r.Stats {
		if s == nil {
			c = append(c, "n/a", "n/a")
			continue
		}
		c = append(c, fmtMS(s.Median), fmtMS(s.P90))
	}
	for i := 1; i < len(t.Runtimes); i++ {
		c = append(c, fmtRatio(r.Ratio(i)))
	}
	return c
}

// Text renders the table aligned for a terminal.
func (t Table) Text() string {
	rows := [][]string{t.header()}
	for _, r := range t.Rows {
		rows = append(rows, t.cells(r))
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", width[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", width[i], c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders the table as a GitHub table.
func (t Table) Markdown() string {
	var b strings.Builder
	h := t.header()
	b.WriteString("| " + strings.Join(h, " | ") + " |\n|")
	for i := range h {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(t.cells(r), " | ") + " |\n")
	}
	return b.String()
}
