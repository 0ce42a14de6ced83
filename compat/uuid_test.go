package compat

import "testing"

func TestParseUUID(t *testing.T) {
	want := [16]byte{0x92, 0x31, 0x9d, 0x98, 0x2b, 0x5c, 0x45, 0x9d, 0xb3, 0xf3, 0xd7, 0x0c, 0x7e, 0x23, 0xef, 0x61}
	for _, s := range []string{"92319d98-2b5c-459d-b3f3-d70c7e23ef61", " 92319D982B5C459DB3F3D70C7E23EF61 ", "92-31-9d98-2b5c459d-b3f3d70c7e23ef61"} {
		got, err := ParseUUID(s)
		if err != nil || got != want {
			t.Errorf("ParseUUID(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "92319d98", "92319d98-2b5c-459d-b3f3-d70c7e23ef6g", "92319d98-2b5c-459d-b3f3-d70c7e23ef61x"} {
		if _, err := ParseUUID(s); err == nil {
			t.Errorf("ParseUUID(%q) accepted", s)
		}
	}
	if got := FormatUUID(want); got != "92319d98-2b5c-459d-b3f3-d70c7e23ef61" {
		t.Errorf("FormatUUID = %s", got)
	}
}
