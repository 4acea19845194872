package landlock

import "testing"

func TestFSRightsByABI(t *testing.T) {
	for _, c := range []struct {
		abi          int
		has, hasNot  uint64
		scopes, logs bool
	}{
		{abi: 0, hasNot: AccessFSExecute},
		{abi: 1, has: AccessFSMakeSym, hasNot: AccessFSRefer},
		{abi: 2, has: AccessFSRefer, hasNot: AccessFSTruncate},
		{abi: 3, has: AccessFSTruncate, hasNot: AccessFSIoctlDev},
		{abi: 4, has: AccessFSTruncate, hasNot: AccessFSIoctlDev},
		{abi: 5, has: AccessFSIoctlDev},
		{abi: 6, has: AccessFSIoctlDev, scopes: true},
		{abi: 7, has: AccessFSIoctlDev, scopes: true, logs: true},
		{abi: 99, has: AccessFSIoctlDev, hasNot: 1 << 16, scopes: true, logs: true},
	} {
		got := FSRights(c.abi)
		if got&c.has != c.has {
			t.Errorf("ABI %d: rights %#x lack %#x", c.abi, got, c.has)
		}
		if c.hasNot != 0 && got&c.hasNot != 0 {
			t.Errorf("ABI %d: rights %#x include %#x", c.abi, got, c.hasNot)
		}
		if (Scopes(c.abi) != 0) != c.scopes {
			t.Errorf("ABI %d: scopes %#x", c.abi, Scopes(c.abi))
		}
		if SupportsAuditLog(c.abi) != c.logs {
			t.Errorf("ABI %d: audit log %v", c.abi, SupportsAuditLog(c.abi))
		}
	}
	if ReadWrite != FSRights(MaxKnownABI) {
		t.Errorf("ReadWrite %#x is not every right of ABI %d (%#x)", ReadWrite, MaxKnownABI, FSRights(MaxKnownABI))
	}
}

func TestRulesetEmpty(t *testing.T) {
	var nilRules *Ruleset
	for _, c := range []struct {
		r     *Ruleset
		empty bool
	}{
		{nilRules, true},
		{&Ruleset{}, true},
		{&Ruleset{LogNewExec: true, Paths: []PathRule{{Path: "/x"}}}, true},
		{&Ruleset{HandleFS: true}, false},
		{&Ruleset{Scoped: ScopeSignal}, false},
	} {
		if c.r.Empty() != c.empty {
			t.Errorf("%+v: Empty() = %v", c.r, !c.empty)
		}
	}
}
