package server

import (
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
)

func TestSaveParams(t *testing.T) {
	str := func(f, v string) libvirt.TypedParam {
		return libvirt.TypedParam{Field: f, Value: libvirt.TypedParamValue{D: 7, I: v}}
	}
	file, dxml, err := saveParams([]libvirt.TypedParam{str("file", "/x.save"), str("dxml", "<domain/>")})
	if err != nil || file != "/x.save" || dxml != "<domain/>" {
		t.Fatalf("%q %q %v", file, dxml, err)
	}
	if _, _, err := saveParams([]libvirt.TypedParam{str("dxml", "<domain/>")}); err == nil {
		t.Error("no file accepted")
	}
	if _, _, err := saveParams([]libvirt.TypedParam{str("file", "/x"), str("parallel.channels", "4")}); err == nil {
		t.Error("unknown parameter accepted")
	}
	if _, _, err := saveParams([]libvirt.TypedParam{{Field: "file", Value: libvirt.TypedParamValue{D: 1, I: int32(3)}}}); err == nil {
		t.Error("a number as file accepted")
	}
}
