package qemu

import (
	"reflect"
	"testing"

	"github.com/govirtd/govirtd/driver/qemu/qmp"
)

func capNames(cs []qmp.MigrationCapability) map[string]bool {
	m := map[string]bool{}
	for _, c := range cs {
		m[c.Capability] = c.State
	}
	return m
}

func TestMigrationCapsSentOnlyWhenChanged(t *testing.T) {
	// Unknown state (a reattached QEMU): the whole list, as libvirt sends it.
	if got := capsToSend(nil, sourceCaps(false, false)); len(got) != len(sourceCaps(false, false)) {
		t.Fatalf("unknown state: sent %d capabilities, want all %d", len(got), len(sourceCaps(false, false)))
	}

	fresh := map[string]bool{"events": true}
	send := capsToSend(fresh, sourceCaps(false, false))
	if want := map[string]bool{"pause-before-switchover": true, "return-path": true}; !reflect.DeepEqual(capNames(send), want) {
		t.Fatalf("fresh QEMU, source caps: sent %v, want %v", capNames(send), want)
	}
	after := applyCaps(fresh, send)
	if want := map[string]bool{"events": true, "pause-before-switchover": true, "return-path": true}; !reflect.DeepEqual(after, want) {
		t.Fatalf("after source caps: known %v, want %v", after, want)
	}
	if again := capsToSend(after, sourceCaps(false, false)); len(again) != 0 {
		t.Fatalf("same caps again: sent %v, want nothing", capNames(again))
	}

	// Reset after a failed migration: only what is on goes off; events stays.
	reset := capsToSend(after, allCapsOff())
	if want := map[string]bool{"pause-before-switchover": false, "return-path": false}; !reflect.DeepEqual(capNames(reset), want) {
		t.Fatalf("reset: sent %v, want %v", capNames(reset), want)
	}
	if got := applyCaps(after, reset); !reflect.DeepEqual(got, fresh) {
		t.Fatalf("after reset: known %v, want %v", got, fresh)
	}

	// From unknown, what was sent becomes known.
	if got := applyCaps(nil, destCaps(true)); !reflect.DeepEqual(got, map[string]bool{"events": true, "late-block-activate": true}) {
		t.Fatalf("from unknown: known %v", got)
	}
}
