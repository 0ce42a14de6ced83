// Package typedparams handles libvirt typed parameters
// ([]libvirt.TypedParam) the way libvirt 9.0's src/util/virtypedparam.c
// does: validation against an accepted list, typed getters and builders.
//
// VIR_TYPED_PARAM_STRING_OKAY: the flag (4) only matters for APIs that
// *return* typed parameters. libvirt's server side (virTypedParamsSerialize)
// drops string parameters from a reply when the caller did not pass the
// flag, because old clients cannot decode them. Parameters a client *sends*
// (migration parameters, set* APIs) are never filtered by it, so Validate
// does not look at it; replies that may contain strings go through
// ForReply.
package typedparams

import (
	"fmt"
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// Type is a typed parameter type (virTypedParameterType), the discriminant
// of the value union on the wire.
type Type uint32

// Parameter types. Multiple is libvirt's VIR_TYPED_PARAM_MULTIPLE: or-ed
// into an accepted type it allows the parameter to occur more than once.
const (
	TypeInt     Type = 1
	TypeUint    Type = 2
	TypeLLong   Type = 3
	TypeULLong  Type = 4
	TypeDouble  Type = 5
	TypeBoolean Type = 6
	TypeString  Type = 7
	Multiple    Type = 1 << 31
)

// StringOkay is VIR_TYPED_PARAM_STRING_OKAY, the API flag by which a client
// says it can receive string parameters.
const StringOkay uint32 = 1 << 2

// typeNames is virTypedParameter's enum text, used in error messages.
var typeNames = [...]string{"unknown", "int", "uint", "llong", "ullong", "double", "boolean", "string"}

func (t Type) String() string {
	t &^= Multiple
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return typeNames[0]
}

// Validate checks params against the accepted names and types the way
// virTypedParamsValidate does, including which error wins when several are
// present: libvirt sorts the parameters by name and reports the first
// problem in that order.
//
//   - unknown name: VIR_ERR_ARGUMENT_UNSUPPORTED "parameter '%s' not supported"
//   - repeated name not declared Multiple: VIR_ERR_INVALID_ARG
//     "parameter '%s' occurs multiple times"
//   - wrong type: VIR_ERR_INVALID_ARG
//     "invalid type '%s' for parameter '%s', expected '%s'"
//
// All three come from VIR_FROM_NONE, as virtypedparam.c has no domain of
// its own.
func Validate(params []libvirt.TypedParam, allowed map[string]Type) error {
	sorted := make([]libvirt.TypedParam, len(params))
	copy(sorted, params)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Field < sorted[j].Field })
	for i, p := range sorted {
		want, ok := allowed[p.Field]
		if !ok {
			return compat.Errorf(libvirt.ErrArgumentUnsupported, compat.FromNone,
				"parameter '%s' not supported", p.Field)
		}
		if i > 0 && sorted[i-1].Field == p.Field && want&Multiple == 0 {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone,
				"parameter '%s' occurs multiple times", p.Field)
		}
		if got := Type(p.Value.D); got != want&^Multiple {
			return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone,
				"invalid type '%s' for parameter '%s', expected '%s'", got, p.Field, want)
		}
	}
	return nil
}

// find returns the first parameter called name, as virTypedParamsGet does.
func find(params []libvirt.TypedParam, name string) (libvirt.TypedParam, bool) {
	for _, p := range params {
		if p.Field == name {
			return p, true
		}
	}
	return libvirt.TypedParam{}, false
}

// typeErr is the error of libvirt's public virTypedParamsGet* getters when
// the parameter exists with another type.
func typeErr(p libvirt.TypedParam, want Type) error {
	return compat.Errorf(libvirt.ErrInvalidArg, compat.FromNone,
		"invalid type '%s' for parameter '%s', expected '%s'", Type(p.Value.D), p.Field, want)
}

// get returns the value of name if present with type want. The value is
// converted with a checked assertion so a malformed union (wrong Go type
// for its discriminant) is an error rather than a panic.
func get[T any](params []libvirt.TypedParam, name string, want Type) (T, bool, error) {
	var zero T
	p, ok := find(params, name)
	if !ok {
		return zero, false, nil
	}
	if Type(p.Value.D) != want {
		return zero, true, typeErr(p, want)
	}
	v, ok := p.Value.I.(T)
	if !ok {
		return zero, true, compat.Errorf(libvirt.ErrInternalError, compat.FromNone,
			"parameter '%s' of type '%s' holds %T", name, want, p.Value.I)
	}
	return v, true, nil
}

// String returns the string parameter name. found reports presence.
func String(params []libvirt.TypedParam, name string) (v string, found bool, err error) {
	return get[string](params, name, TypeString)
}

// Int returns the int parameter name.
func Int(params []libvirt.TypedParam, name string) (int32, bool, error) {
	return get[int32](params, name, TypeInt)
}

// Uint returns the uint parameter name.
func Uint(params []libvirt.TypedParam, name string) (uint32, bool, error) {
	return get[uint32](params, name, TypeUint)
}

// LLong returns the llong parameter name.
func LLong(params []libvirt.TypedParam, name string) (int64, bool, error) {
	return get[int64](params, name, TypeLLong)
}

// Uint64 returns the ullong parameter name.
func Uint64(params []libvirt.TypedParam, name string) (uint64, bool, error) {
	return get[uint64](params, name, TypeULLong)
}

// Double returns the double parameter name.
func Double(params []libvirt.TypedParam, name string) (float64, bool, error) {
	return get[float64](params, name, TypeDouble)
}

// Bool returns the boolean parameter name. Booleans travel as an int;
// any non-zero value is true, as in libvirt.
func Bool(params []libvirt.TypedParam, name string) (bool, bool, error) {
	v, found, err := get[int32](params, name, TypeBoolean)
	return v != 0, found, err
}

// Strings returns every string parameter called name, in order
// (virTypedParamsGetStringList: parameters of other types are skipped).
func Strings(params []libvirt.TypedParam, name string) []string {
	var out []string
	for _, p := range params {
		if p.Field != name || Type(p.Value.D) != TypeString {
			continue
		}
		if s, ok := p.Value.I.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ForReply prepares parameters for an API reply: like
// virTypedParamsSerialize on the server, it drops string parameters unless
// the caller passed StringOkay in its flags.
func ForReply(params []libvirt.TypedParam, flags uint32) []libvirt.TypedParam {
	if flags&StringOkay != 0 {
		return params
	}
	out := make([]libvirt.TypedParam, 0, len(params))
	for _, p := range params {
		if Type(p.Value.D) != TypeString {
			out = append(out, p)
		}
	}
	return out
}

// List builds typed parameters in order, like libvirt's virTypedParamList.
// The zero value is ready to use.
type List struct {
	params []libvirt.TypedParam
}

func (l *List) add(name string, v *libvirt.TypedParamValue) *List {
	l.params = append(l.params, libvirt.TypedParam{Field: name, Value: *v})
	return l
}

// AddInt appends an int parameter.
func (l *List) AddInt(name string, v int32) *List {
	return l.add(name, libvirt.NewTypedParamValueInt(v))
}

// AddUint appends a uint parameter.
func (l *List) AddUint(name string, v uint32) *List {
	return l.add(name, libvirt.NewTypedParamValueUint(v))
}

// AddLLong appends an llong parameter.
func (l *List) AddLLong(name string, v int64) *List {
	return l.add(name, libvirt.NewTypedParamValueLlong(v))
}

// AddULLong appends an ullong parameter.
func (l *List) AddULLong(name string, v uint64) *List {
	return l.add(name, libvirt.NewTypedParamValueUllong(v))
}

// AddDouble appends a double parameter.
func (l *List) AddDouble(name string, v float64) *List {
	return l.add(name, libvirt.NewTypedParamValueDouble(v))
}

// AddBool appends a boolean parameter (1 or 0 on the wire, as libvirt
// normalises with !!value).
func (l *List) AddBool(name string, v bool) *List {
	var i int32
	if v {
		i = 1
	}
	return l.add(name, libvirt.NewTypedParamValueBoolean(i))
}

// AddString appends a string parameter.
func (l *List) AddString(name string, v string) *List {
	return l.add(name, libvirt.NewTypedParamValueString(v))
}

// Len is the number of parameters added so far.
func (l *List) Len() int { return len(l.params) }

// Params returns the parameters added so far. The slice is shared with
// the list; a nil list yields nil.
func (l *List) Params() []libvirt.TypedParam {
	if l == nil {
		return nil
	}
	return l.params
}

// Describe formats a parameter for logs ("name=value (type)").
func Describe(p libvirt.TypedParam) string {
	return fmt.Sprintf("%s=%v (%s)", p.Field, p.Value.I, Type(p.Value.D))
}
