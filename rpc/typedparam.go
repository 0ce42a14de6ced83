package rpc

import (
	"reflect"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/xdr"
)

// Typed parameter value types (virTypedParameterType): the discriminant of
// remote_typed_param_value.
const (
	ParamInt     = 1
	ParamUint    = 2
	ParamLLong   = 3
	ParamULLong  = 4
	ParamDouble  = 5
	ParamBoolean = 6
	ParamString  = 7
)

// typedParamArms maps each discriminant to the Go type of its arm, in the
// representation go-libvirt uses (booleans travel as int).
var typedParamArms = map[uint32]reflect.Type{
	ParamInt:     reflect.TypeFor[int32](),
	ParamUint:    reflect.TypeFor[uint32](),
	ParamLLong:   reflect.TypeFor[int64](),
	ParamULLong:  reflect.TypeFor[uint64](),
	ParamDouble:  reflect.TypeFor[float64](),
	ParamBoolean: reflect.TypeFor[int32](),
	ParamString:  reflect.TypeFor[string](),
}

func init() {
	xdr.RegisterUnion(reflect.TypeFor[libvirt.TypedParamValue](), xdr.Union{
		Arm: func(d uint32) (reflect.Type, bool) {
			t, ok := typedParamArms[d]
			return t, ok
		},
	})
}
