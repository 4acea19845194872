package jsonwarm

import (
	"encoding/json"
	"testing"
)

type inner struct {
	A []string          `json:"a,omitempty"`
	M map[string]*inner `json:"m,omitempty"`
}

type outer struct {
	I  *inner  `json:"i,omitempty"`
	Is []inner `json:"is,omitempty"`
}

// A warmed type still encodes and decodes as before (the caches must only
// be filled, never filled wrongly), also while a warm-up runs.
func TestWarmThenRoundTrip(t *testing.T) {
	done := make(chan struct{})
	go func() { defer close(done); Warm(&outer{}) }()
	in := outer{I: &inner{A: []string{"x"}, M: map[string]*inner{"k": {A: []string{"y"}}}}, Is: []inner{{A: []string{"z"}}}}
	b, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	var out outer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&out)
	if string(b) != string(b2) {
		t.Fatalf("round trip: %s != %s", b, b2)
	}
}

// A value that cannot be encoded (a channel) is skipped, not a panic: the
// warm-up must never be what fails a process.
func TestWarmUnencodable(t *testing.T) {
	Warm(make(chan int), &outer{})
	Start()
}
