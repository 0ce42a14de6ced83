package xdr

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
)

type encoder struct{ buf []byte }

func (e *encoder) uint32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }
func (e *encoder) uint64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

func (e *encoder) opaque(b []byte) {
	e.buf = append(e.buf, b...)
	e.buf = append(e.buf, zeros[:pad(len(b))]...)
}

var zeros [4]byte

type decoder struct {
	data []byte
	off  int
}

func (d *decoder) remaining() int { return len(d.data) - d.off }

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrShort, n, d.off, d.remaining())
	}
	b := d.data[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) uint32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (d *decoder) uint64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// padded reads n bytes plus their padding to a 4-byte boundary. The
// padding's value is ignored, as libvirt's rpcgen decoders ignore it.
func (d *decoder) padded(n int) ([]byte, error) {
	b, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if _, err := d.take(pad(n)); err != nil {
		return nil, err
	}
	return b, nil
}

func encBool(e *encoder, v reflect.Value) error {
	if v.Bool() {
		e.uint32(1)
	} else {
		e.uint32(0)
	}
	return nil
}

func decBool(d *decoder, v reflect.Value) error {
	x, err := d.uint32()
	if err != nil {
		return err
	}
	// Any non-zero value is true, as in the C library's xdr_bool.
	v.SetBool(x != 0)
	return nil
}

func encInt(e *encoder, v reflect.Value) error {
	e.uint32(uint32(int32(v.Int())))
	return nil
}

func decInt(d *decoder, v reflect.Value) error {
	x, err := d.uint32()
	if err != nil {
		return err
	}
	i := int64(int32(x))
	if v.OverflowInt(i) {
		return fmt.Errorf("xdr: int %d overflows %s", i, v.Type())
	}
	v.SetInt(i)
	return nil
}

func encUint(e *encoder, v reflect.Value) error {
	e.uint32(uint32(v.Uint()))
	return nil
}

func decUint(d *decoder, v reflect.Value) error {
	x, err := d.uint32()
	if err != nil {
		return err
	}
	if v.OverflowUint(uint64(x)) {
		return fmt.Errorf("xdr: unsigned int %d overflows %s", x, v.Type())
	}
	v.SetUint(uint64(x))
	return nil
}

func encHyper(e *encoder, v reflect.Value) error {
	e.uint64(uint64(v.Int()))
	return nil
}

func decHyper(d *decoder, v reflect.Value) error {
	x, err := d.uint64()
	if err != nil {
		return err
	}
	v.SetInt(int64(x))
	return nil
}

func encUhyper(e *encoder, v reflect.Value) error {
	e.uint64(v.Uint())
	return nil
}

func decUhyper(d *decoder, v reflect.Value) error {
	x, err := d.uint64()
	if err != nil {
		return err
	}
	v.SetUint(x)
	return nil
}

func encFloat(e *encoder, v reflect.Value) error {
	e.uint32(math.Float32bits(float32(v.Float())))
	return nil
}

func decFloat(d *decoder, v reflect.Value) error {
	x, err := d.uint32()
	if err != nil {
		return err
	}
	v.SetFloat(float64(math.Float32frombits(x)))
	return nil
}

func encDouble(e *encoder, v reflect.Value) error {
	e.uint64(math.Float64bits(v.Float()))
	return nil
}

func decDouble(d *decoder, v reflect.Value) error {
	x, err := d.uint64()
	if err != nil {
		return err
	}
	v.SetFloat(math.Float64frombits(x))
	return nil
}

func encString(e *encoder, v reflect.Value) error {
	s := v.String()
	if len(s) > MaxString {
		return fmt.Errorf("xdr: string of %d bytes exceeds the %d byte limit", len(s), MaxString)
	}
	e.uint32(uint32(len(s)))
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, zeros[:pad(len(s))]...)
	return nil
}

func decString(d *decoder, v reflect.Value) error {
	n, err := d.uint32()
	if err != nil {
		return err
	}
	if n > MaxString {
		return fmt.Errorf("xdr: string of %d bytes exceeds the %d byte limit", n, MaxString)
	}
	b, err := d.padded(int(n))
	if err != nil {
		return err
	}
	v.SetString(string(b))
	return nil
}

func encOpaque(e *encoder, v reflect.Value) error {
	b := v.Bytes()
	e.uint32(uint32(len(b)))
	e.opaque(b)
	return nil
}

func decOpaque(d *decoder, v reflect.Value) error {
	n, err := d.uint32()
	if err != nil {
		return err
	}
	b, err := d.padded(int(min(n, uint32(d.remaining()+1))))
	if err != nil {
		return err
	}
	v.SetBytes(append([]byte(nil), b...))
	return nil
}

func encFixedOpaque(e *encoder, v reflect.Value) error {
	n := v.Len()
	if v.CanAddr() {
		// The common case (a UUID inside a struct or slice): no copy
		// through reflect.
		e.buf = append(e.buf, v.Bytes()...)
	} else {
		start := len(e.buf)
		e.buf = append(e.buf, make([]byte, n)...)
		reflect.Copy(reflect.ValueOf(e.buf[start:start+n]), v)
	}
	e.buf = append(e.buf, zeros[:pad(n)]...)
	return nil
}

func decFixedOpaque(d *decoder, v reflect.Value) error {
	b, err := d.padded(v.Len())
	if err != nil {
		return err
	}
	reflect.Copy(v, reflect.ValueOf(b))
	return nil
}
