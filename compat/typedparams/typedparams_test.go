package typedparams

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

func TestValidate(t *testing.T) {
	allowed := map[string]Type{
		"a":     TypeString,
		"b":     TypeULLong,
		"disks": TypeString | Multiple,
	}
	str := func(n, v string) libvirt.TypedParam {
		return libvirt.TypedParam{Field: n, Value: *libvirt.NewTypedParamValueString(v)}
	}
	ull := func(n string, v uint64) libvirt.TypedParam {
		return libvirt.TypedParam{Field: n, Value: *libvirt.NewTypedParamValueUllong(v)}
	}
	tests := []struct {
		name   string
		params []libvirt.TypedParam
		code   libvirt.ErrorNumber
		msg    string
	}{
		{"empty", nil, 0, ""},
		{"ok", []libvirt.TypedParam{str("a", "x"), ull("b", 1), str("disks", "vda"), str("disks", "vdb")}, 0, ""},
		{"unknown", []libvirt.TypedParam{str("zzz", "x")}, libvirt.ErrArgumentUnsupported,
			"argument unsupported: parameter 'zzz' not supported"},
		{"wrong type", []libvirt.TypedParam{str("b", "x")}, libvirt.ErrInvalidArg,
			"invalid argument: invalid type 'string' for parameter 'b', expected 'ullong'"},
		{"duplicate", []libvirt.TypedParam{str("a", "x"), str("a", "y")}, libvirt.ErrInvalidArg,
			"invalid argument: parameter 'a' occurs multiple times"},
		// Sorted order decides: "a" (unknown type) sorts before "zzz".
		{"first in sorted order", []libvirt.TypedParam{str("zzz", "x"), ull("a", 1)}, libvirt.ErrInvalidArg,
			"invalid argument: invalid type 'ullong' for parameter 'a', expected 'string'"},
		{"unknown type number", []libvirt.TypedParam{{Field: "a", Value: libvirt.TypedParamValue{D: 99, I: 1}}},
			libvirt.ErrInvalidArg, "invalid argument: invalid type 'unknown' for parameter 'a', expected 'string'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.params, allowed)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			le := compat.As(err)
			if err == nil || le.Code != tt.code || le.Message() != tt.msg || le.Domain != compat.FromNone {
				t.Fatalf("got %v (%v), want code %v %q", err, le.Code, tt.code, tt.msg)
			}
		})
	}
}

func TestGettersAndBuilder(t *testing.T) {
	var l List
	l.AddInt("i", -3).AddUint("u", 4).AddLLong("l", -5).AddULLong("ul", 6).
		AddDouble("d", 1.5).AddBool("b", true).AddString("s", "x").AddString("m", "1").AddString("m", "2")
	p := l.Params()
	if l.Len() != 9 || p[0].Value.D != 1 || p[5].Value.D != 6 || p[5].Value.I != int32(1) {
		t.Fatalf("builder: %+v", p)
	}
	if v, ok, err := Int(p, "i"); v != -3 || !ok || err != nil {
		t.Errorf("Int = %v %v %v", v, ok, err)
	}
	if v, ok, err := Uint(p, "u"); v != 4 || !ok || err != nil {
		t.Errorf("Uint = %v %v %v", v, ok, err)
	}
	if v, ok, err := LLong(p, "l"); v != -5 || !ok || err != nil {
		t.Errorf("LLong = %v %v %v", v, ok, err)
	}
	if v, ok, err := Uint64(p, "ul"); v != 6 || !ok || err != nil {
		t.Errorf("Uint64 = %v %v %v", v, ok, err)
	}
	if v, ok, err := Double(p, "d"); v != 1.5 || !ok || err != nil {
		t.Errorf("Double = %v %v %v", v, ok, err)
	}
	if v, ok, err := Bool(p, "b"); !v || !ok || err != nil {
		t.Errorf("Bool = %v %v %v", v, ok, err)
	}
	if v, ok, err := String(p, "s"); v != "x" || !ok || err != nil {
		t.Errorf("String = %v %v %v", v, ok, err)
	}
	if v, ok, err := String(p, "missing"); v != "" || ok || err != nil {
		t.Errorf("missing = %v %v %v", v, ok, err)
	}
	if _, ok, err := Uint64(p, "s"); !ok || compat.As(err).Code != libvirt.ErrInvalidArg {
		t.Errorf("wrong type: %v %v", ok, err)
	}
	if got := Strings(p, "m"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("Strings = %v", got)
	}
	// A malformed union must not panic.
	bad := []libvirt.TypedParam{{Field: "x", Value: libvirt.TypedParamValue{D: 7, I: 5}}}
	if _, _, err := String(bad, "x"); err == nil {
		t.Error("malformed union accepted")
	}
	if got := ForReply(p, 0); len(got) != 6 {
		t.Errorf("ForReply without STRING_OKAY kept %d", len(got))
	}
	if got := ForReply(p, StringOkay); len(got) != 9 {
		t.Errorf("ForReply with STRING_OKAY kept %d", len(got))
	}
}
