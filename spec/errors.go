package spec

import (
	"errors"
	"fmt"
	"strconv"
)

// FieldError is one problem with one field of a document. Path uses the
// document's own field names: "network.egress.allow[1].ports[0].endPort".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors flattens an error built with errors.Join (at any depth) into its
// leaves, so that a CLI can print one problem a line. A nil error gives nil.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// errList collects field errors in the order they are found.
type errList struct{ errs []error }

func (l *errList) add(path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addErr records err under a path prefix, keeping the leaves of a joined
// error as separate entries.
func (l *errList) addErr(prefix string, err error) {
	for _, e := range Errors(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			l.errs = append(l.errs, &FieldError{Path: joinPath(prefix, fe.Path), Msg: fe.Msg})
			continue
		}
		l.errs = append(l.errs, &FieldError{Path: prefix, Msg: e.Error()})
	}
}

func (l *errList) err() error { return errors.Join(l.errs...) }

// joinPath appends a field name to a path ("" + "a" = "a", "a" + "b" = "a.b").
func joinPath(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	case name[0] == '[':
		return prefix + name
	}
	return prefix + "." + name
}

func index(prefix string, i int) string { return prefix + "[" + strconv.Itoa(i) + "]" }

// key names a map entry: a.b for plain keys, a["x y"] for others.
func key(prefix, k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			plain = false
			break
		}
	}
	if plain {
		return joinPath(prefix, k)
	}
	return prefix + "[" + strconv.Quote(k) + "]"
}
