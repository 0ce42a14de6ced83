// Package xdr encodes and decodes XDR (RFC 4506) the way libvirt's rpcgen
// output does, for the Go types that go-libvirt generates from
// remote_protocol.x.
//
// Mapping (the same as github.com/davecgh/go-xdr/xdr2, which the tests use as
// the reference implementation):
//
//	int8/16/32, enums      -> int (4 bytes)
//	uint8/16/32            -> unsigned int (4 bytes), except in byte arrays
//	int64 / uint64         -> hyper / unsigned hyper
//	float32 / float64      -> float / double
//	bool                   -> bool
//	string                 -> string (length, bytes, padding)
//	[]byte / [N]byte       -> variable / fixed opaque
//	[]T / [N]T             -> variable / fixed array
//	struct                 -> fields in order (unexported ones too: go-libvirt
//	                          names one field remote_error, and the wire still
//	                          carries it)
//
// Two things xdr2 cannot do are handled here: discriminated unions (libvirt's
// typed parameter values, registered with RegisterUnion) and optional values
// ("*T" in the .x file, a slice of at most one element in go-libvirt). Decoding never allocates more than the input could describe, so
// a hostile length cannot make the daemon allocate gigabytes.
//
// Each Go type is analysed once and compiled into a small tree of encode and
// decode functions, so the per-call cost is a walk over the value, not a
// re-inspection of the type.
package xdr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// MaxString is libvirt's VIR_NET_MESSAGE_STRING_MAX: the longest string a
// message may carry.
const MaxString = 4 * 1024 * 1024

// ErrShort is returned when the input ends before the value does.
var ErrShort = errors.New("xdr: input too short")

// ErrTrailing is returned when bytes are left after the value.
var ErrTrailing = errors.New("xdr: trailing bytes after value")

// A Union describes a Go type that stands for an XDR discriminated union.
// The Go type must be a struct whose first field is the uint32 (or int32)
// discriminant and whose second field is an interface{} holding the arm.
type Union struct {
	// Arm returns the Go type of the arm for a discriminant, or false for an
	// unknown discriminant (a decode error).
	Arm func(disc uint32) (reflect.Type, bool)
}

var (
	unionsMu sync.RWMutex
	unions   = map[reflect.Type]Union{}
	codecs   sync.Map // reflect.Type -> *codec
)

// RegisterUnion declares t (a struct {D uint32; I interface{}}) a union.
// Call it from init, before the type is first encoded or decoded.
func RegisterUnion(t reflect.Type, u Union) {
	if t.Kind() != reflect.Struct || t.NumField() != 2 || t.Field(1).Type.Kind() != reflect.Interface {
		panic(fmt.Sprintf("xdr: union %s must be struct{discriminant; interface{}}", t))
	}
	unionsMu.Lock()
	defer unionsMu.Unlock()
	unions[t] = u
}

// Marshal returns the XDR encoding of v.
func Marshal(v any) ([]byte, error) {
	return Append(nil, v)
}

// Append appends the XDR encoding of v to buf.
func Append(buf []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return buf, fmt.Errorf("xdr: cannot encode nil %s", rv.Type())
		}
		rv = rv.Elem()
	}
	c, err := codecFor(rv.Type())
	if err != nil {
		return buf, err
	}
	e := encoder{buf: buf}
	if err := c.enc(&e, rv); err != nil {
		return buf, err
	}
	return e.buf, nil
}

// Unmarshal decodes data into v, which must be a non-nil pointer. All of data
// must be consumed.
func Unmarshal(data []byte, v any) error {
	n, err := UnmarshalPrefix(data, v)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("%w: %d of %d bytes used", ErrTrailing, n, len(data))
	}
	return nil
}

// UnmarshalPrefix decodes one value from the start of data into v and returns
// the number of bytes used.
func UnmarshalPrefix(data []byte, v any) (int, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return 0, fmt.Errorf("xdr: decode target must be a non-nil pointer, got %T", v)
	}
	c, err := codecFor(rv.Elem().Type())
	if err != nil {
		return 0, err
	}
	d := decoder{data: data}
	if err := c.dec(&d, rv.Elem()); err != nil {
		return d.off, err
	}
	return d.off, nil
}

type codec struct {
	enc func(*encoder, reflect.Value) error
	dec func(*decoder, reflect.Value) error
	// minSize is the fewest bytes one encoded value takes; it bounds how
	// many elements a length prefix may claim.
	minSize int
}

func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	c, err := build(t, map[reflect.Type]*codec{})
	if err != nil {
		return nil, err
	}
	codecs.Store(t, c)
	return c, nil
}

// build compiles t. inProgress breaks cycles of recursive types (libvirt has
// none today, but a linked structure must not hang the builder).
func build(t reflect.Type, inProgress map[reflect.Type]*codec) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	if c, ok := inProgress[t]; ok {
		return c, nil
	}
	unionsMu.RLock()
	u, isUnion := unions[t]
	unionsMu.RUnlock()
	if isUnion {
		return buildUnion(t, u, inProgress)
	}

	switch t.Kind() {
	case reflect.Bool:
		return &codec{enc: encBool, dec: decBool, minSize: 4}, nil
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return &codec{enc: encInt, dec: decInt, minSize: 4}, nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &codec{enc: encUint, dec: decUint, minSize: 4}, nil
	case reflect.Int64:
		return &codec{enc: encHyper, dec: decHyper, minSize: 8}, nil
	case reflect.Uint64:
		return &codec{enc: encUhyper, dec: decUhyper, minSize: 8}, nil
	case reflect.Float32:
		return &codec{enc: encFloat, dec: decFloat, minSize: 4}, nil
	case reflect.Float64:
		return &codec{enc: encDouble, dec: decDouble, minSize: 8}, nil
	case reflect.String:
		return &codec{enc: encString, dec: decString, minSize: 4}, nil
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			n := t.Len()
			return &codec{enc: encFixedOpaque, dec: decFixedOpaque, minSize: n + pad(n)}, nil
		}
		return buildArray(t, inProgress)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &codec{enc: encOpaque, dec: decOpaque, minSize: 4}, nil
		}
		return buildSlice(t, inProgress)
	case reflect.Struct:
		return buildStruct(t, inProgress)
	case reflect.Pointer:
		return buildPointer(t, inProgress)
	}
	return nil, fmt.Errorf("xdr: type %s (%s) has no XDR mapping", t, t.Kind())
}

// isOptional tells whether a slice type is go-libvirt's rendering of an XDR
// optional value ("remote_string *" becomes OptString []string).
func isOptional(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && strings.HasPrefix(t.Name(), "Opt")
}

func buildArray(t reflect.Type, inProgress map[reflect.Type]*codec) (*codec, error) {
	c := &codec{}
	inProgress[t] = c
	elem, err := build(t.Elem(), inProgress)
	if err != nil {
		return nil, err
	}
	n := t.Len()
	c.minSize = n * elem.minSize
	c.enc = func(e *encoder, v reflect.Value) error {
		for i := 0; i < n; i++ {
			if err := elem.enc(e, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		for i := 0; i < n; i++ {
			if err := elem.dec(d, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	return c, nil
}

func buildSlice(t reflect.Type, inProgress map[reflect.Type]*codec) (*codec, error) {
	c := &codec{minSize: 4}
	inProgress[t] = c
	elem, err := build(t.Elem(), inProgress)
	if err != nil {
		return nil, err
	}
	optional := isOptional(t)
	minElem := max(elem.minSize, 1)
	c.enc = func(e *encoder, v reflect.Value) error {
		n := v.Len()
		if optional && n > 1 {
			return fmt.Errorf("xdr: optional %s holds %d values", t, n)
		}
		e.uint32(uint32(n))
		for i := 0; i < n; i++ {
			if err := elem.enc(e, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		n, err := d.uint32()
		if err != nil {
			return err
		}
		if optional && n > 1 {
			// The presence flag of an optional value is an XDR bool: the C
			// library reads any non-zero value as present, and go-libvirt
			// relies on it (it sends CONNECT_OPEN's flag as 0x01000000).
			n = 1
		}
		if uint64(n)*uint64(minElem) > uint64(d.remaining()) {
			return fmt.Errorf("%w: %s claims %d elements, %d bytes left", ErrShort, t, n, d.remaining())
		}
		if n == 0 {
			v.SetZero()
			return nil
		}
		s := reflect.MakeSlice(t, int(n), int(n))
		for i := 0; i < int(n); i++ {
			if err := elem.dec(d, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	return c, nil
}

func buildStruct(t reflect.Type, inProgress map[reflect.Type]*codec) (*codec, error) {
	c := &codec{}
	inProgress[t] = c
	fields := make([]*codec, t.NumField())
	for i := range fields {
		f, err := build(t.Field(i).Type, inProgress)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t, t.Field(i).Name, err)
		}
		fields[i] = f
		c.minSize += f.minSize
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		for i, f := range fields {
			if err := f.enc(e, v.Field(i)); err != nil {
				return err
			}
		}
		return nil
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		for i, f := range fields {
			fv := v.Field(i)
			if !fv.CanSet() {
				// An unexported field still occupies the wire: decode it into
				// a scratch value and drop it.
				fv = reflect.New(fv.Type()).Elem()
			}
			if err := f.dec(d, fv); err != nil {
				return err
			}
		}
		return nil
	}
	return c, nil
}

// buildPointer treats *T as an XDR optional T, as rpcgen does.
func buildPointer(t reflect.Type, inProgress map[reflect.Type]*codec) (*codec, error) {
	c := &codec{minSize: 4}
	inProgress[t] = c
	elem, err := build(t.Elem(), inProgress)
	if err != nil {
		return nil, err
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		if v.IsNil() {
			e.uint32(0)
			return nil
		}
		e.uint32(1)
		return elem.enc(e, v.Elem())
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		present, err := d.uint32()
		if err != nil {
			return err
		}
		if present == 0 {
			v.SetZero()
			return nil
		}
		p := reflect.New(t.Elem())
		if err := elem.dec(d, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	return c, nil
}

func buildUnion(t reflect.Type, u Union, inProgress map[reflect.Type]*codec) (*codec, error) {
	c := &codec{minSize: 4}
	inProgress[t] = c
	var armsMu sync.Mutex
	arms := map[reflect.Type]*codec{}
	armCodec := func(at reflect.Type) (*codec, error) {
		armsMu.Lock()
		defer armsMu.Unlock()
		if ac, ok := arms[at]; ok {
			return ac, nil
		}
		ac, err := codecFor(at)
		if err != nil {
			return nil, err
		}
		arms[at] = ac
		return ac, nil
	}
	c.enc = func(e *encoder, v reflect.Value) error {
		var disc uint32
		if v.Field(0).CanInt() {
			disc = uint32(v.Field(0).Int())
		} else {
			disc = uint32(v.Field(0).Uint())
		}
		want, ok := u.Arm(disc)
		if !ok {
			return fmt.Errorf("xdr: %s: unknown discriminant %d", t, disc)
		}
		arm := v.Field(1)
		if arm.IsNil() {
			return fmt.Errorf("xdr: %s: discriminant %d with no value", t, disc)
		}
		arm = arm.Elem()
		if arm.Type() != want {
			if !arm.CanConvert(want) {
				return fmt.Errorf("xdr: %s: discriminant %d needs %s, value is %s", t, disc, want, arm.Type())
			}
			arm = arm.Convert(want)
		}
		ac, err := armCodec(want)
		if err != nil {
			return err
		}
		e.uint32(disc)
		return ac.enc(e, arm)
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		disc, err := d.uint32()
		if err != nil {
			return err
		}
		at, ok := u.Arm(disc)
		if !ok {
			return fmt.Errorf("xdr: %s: unknown discriminant %d", t, disc)
		}
		ac, err := armCodec(at)
		if err != nil {
			return err
		}
		arm := reflect.New(at).Elem()
		if err := ac.dec(d, arm); err != nil {
			return err
		}
		if v.Field(0).CanInt() {
			v.Field(0).SetInt(int64(int32(disc)))
		} else {
			v.Field(0).SetUint(uint64(disc))
		}
		v.Field(1).Set(arm)
		return nil
	}
	return c, nil
}

func pad(n int) int { return (4 - n%4) % 4 }
