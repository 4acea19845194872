package monitor

import "testing"

func TestParseAuditRecord(t *testing.T) {
	serial, f := parseAuditRecord(`audit(1795751780.350:4): domain=1563e6bf2 blockers=fs.read_file path="/etc/host name" dev="vda" ino=611`)
	if serial != "1795751780.350:4" || f["domain"] != "1563e6bf2" || f["blockers"] != "fs.read_file" ||
		auditString(f["path"]) != "/etc/host name" || auditString(f["dev"]) != "vda" || f["ino"] != "611" {
		t.Errorf("%q %v", serial, f)
	}
	_, f = parseAuditRecord(`audit(1.2:3): arch=c000003e syscall=257 pid=42 comm=636174 exe=(null)`)
	if f["pid"] != "42" || auditString(f["comm"]) != "cat" || auditString(f["exe"]) != "" {
		t.Errorf("%v", f)
	}
	if s, _ := parseAuditRecord("no header"); s != "" {
		t.Errorf("serial %q from a bad record", s)
	}
}

func FuzzParseAuditRecord(f *testing.F) {
	f.Add(`audit(1795751780.350:4): domain=1 blockers=fs.read_file path="/x" dev="vda" ino=1`)
	f.Add(`audit(1.2:3): a="unterminated`)
	f.Add(`audit(`)
	f.Fuzz(func(t *testing.T, s string) {
		serial, fields := parseAuditRecord(s)
		if serial == "" && fields != nil {
			t.Errorf("fields without a serial: %q", s)
		}
		for _, v := range fields {
			_ = auditString(v)
		}
	})
}
