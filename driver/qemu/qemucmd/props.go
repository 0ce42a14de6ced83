package qemucmd

import (
	"encoding/json"
	"strings"
)

// props is a JSON object whose keys keep the order they were added in.
// libvirt builds -device/-object/-blockdev arguments key by key and QEMU
// does not care about the order, but the command line is compared with
// libvirt's byte for byte (logs, golden tests), so the order is kept.
type props struct {
	keys []string
	vals []any
}

func newProps() *props { return &props{} }

// add appends key=val and returns p so calls can be chained.
func (p *props) add(key string, val any) *props {
	p.keys = append(p.keys, key)
	p.vals = append(p.vals, val)
	return p
}

// addIf appends key=val only when cond holds (libvirt's optional "T:"/"S:"
// keys that are skipped when unset).
func (p *props) addIf(cond bool, key string, val any) *props {
	if cond {
		p.add(key, val)
	}
	return p
}

// MarshalJSON renders the object compactly, the way libvirt's
// virJSONValueToString does (no spaces, no HTML escaping).
func (p *props) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range p.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSON(&b, k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSON(&b, p.vals[i]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func writeJSON(b *strings.Builder, v any) error {
	if pv, ok := v.(*props); ok {
		out, err := pv.MarshalJSON()
		if err != nil {
			return err
		}
		b.Write(out)
		return nil
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.WriteString(strings.TrimSuffix(sb.String(), "\n"))
	return nil
}

// String renders p; the values used here (strings, numbers, bools, nil,
// nested props) always marshal.
func (p *props) String() string {
	out, err := p.MarshalJSON()
	if err != nil {
		panic("qemucmd: unmarshalable property: " + err.Error())
	}
	return string(out)
}
