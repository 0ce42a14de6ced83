// Package secret is govirtd's secret driver, as libvirt's src/secret:
// secrets (passphrases, keys) that domains and storage refer to by UUID or
// by usage, defined with <secret> XML, with a value that only the host and
// — unless the secret is private — the clients of the read-write socket
// may read.
//
// Persistent secrets and their values are kept in one directory
// (store.go) and come back when the daemon restarts; ephemeral ones live
// in memory only. Values are never logged and never put in an error.
package secret

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// Driver is the secret driver. It implements driver.Secrets.
type Driver struct {
	store *store
	log   *slog.Logger

	mu      sync.Mutex
	secrets map[libvirt.UUID]*object
	sink    func(driver.SecretEvent)
}

var _ driver.Secrets = (*Driver)(nil)

// object is one defined secret.
type object struct {
	def   *def
	value []byte // nil: no value set yet
}

func (o *object) ref() libvirt.Secret {
	return libvirt.Secret{UUID: o.def.UUID, UsageType: int32(o.def.UsageType), UsageID: o.def.UsageID}
}

// New opens the driver on dir (the daemon's <state_dir>/secrets) and loads
// the persistent secrets kept there.
func New(dir string, log *slog.Logger) (*Driver, error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	d := &Driver{store: st, log: log, secrets: map[libvirt.UUID]*object{}}
	all, errs := st.loadAll()
	for _, err := range errs {
		log.Warn("skipping a secret that cannot be loaded", "err", err)
	}
	for _, l := range all {
		if other := d.byUsage(l.def.UsageType, l.def.UsageID); other != nil {
			log.Warn("skipping a secret whose usage another one has", "uuid", compat.FormatUUID(l.def.UUID), "other", compat.FormatUUID(other.def.UUID))
			continue
		}
		d.secrets[l.def.UUID] = &object{def: l.def, value: l.value}
	}
	log.Debug("secrets loaded", "dir", dir, "count", len(d.secrets))
	return d, nil
}

// SetSecretEventSink implements driver.Secrets.
func (d *Driver) SetSecretEventSink(sink func(driver.SecretEvent)) {
	d.mu.Lock()
	d.sink = sink
	d.mu.Unlock()
}

// emit delivers an event; d.mu is held (the sink never blocks), so events
// reach clients in the order the changes happened.
func (d *Driver) emit(ev driver.SecretEvent) {
	if d.sink != nil {
		d.sink(ev)
	}
}

func noSecretUUID(u libvirt.UUID) error {
	return compat.Errorf(libvirt.ErrNoSecret, compat.FromSecret, "no secret with matching uuid '%s'", compat.FormatUUID(u))
}

// unsupportedFlags is virCheckFlags' error, which libvirt words whole
// (no "invalid argument" prefix).
func unsupportedFlags(flags uint32, fn string) error {
	return &compat.Error{Code: libvirt.ErrInvalidArg, Domain: compat.FromSecret, Int1: -1, Verbatim: true,
		Detail: fmt.Sprintf("unsupported flags (0x%x) in function %s", flags, fn)}
}

// get finds a secret by UUID; d.mu is held.
func (d *Driver) get(u libvirt.UUID) (*object, error) {
	o, ok := d.secrets[u]
	if !ok {
		return nil, noSecretUUID(u)
	}
	return o, nil
}

// byUsage finds the secret with this usage; usage type none matches
// nothing, as in libvirt (any number of secrets may have no usage). d.mu
// is held.
func (d *Driver) byUsage(t libvirt.SecretUsageType, id string) *object {
	if t == libvirt.SecretUsageTypeNone {
		return nil
	}
	for _, o := range d.secrets {
		if o.def.UsageType == t && o.def.UsageID == id {
			return o
		}
	}
	return nil
}

// DefineSecret implements driver.Secrets: virSecretDefineXML. A definition
// with the UUID of an existing secret replaces it, if it keeps its usage
// and does not make a private secret public; a new secret may not take the
// usage of another.
func (d *Driver) DefineSecret(ctx context.Context, doc string, flags uint32) (libvirt.Secret, error) {
	if flags&^uint32(libvirt.SecretDefineValidate) != 0 {
		return libvirt.Secret{}, unsupportedFlags(flags, "secretDefineXML")
	}
	nd, err := parseDef(doc)
	if err != nil {
		return libvirt.Secret{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	uuid := compat.FormatUUID(nd.UUID)
	old := d.secrets[nd.UUID]
	if old != nil {
		if old.def.UsageID != nd.UsageID {
			return libvirt.Secret{}, compat.Errorf(libvirt.ErrInternalError, compat.FromSecret,
				"a secret with UUID %s is already defined for use with %s", uuid, old.def.UsageID)
		}
		if old.def.Private && !nd.Private {
			return libvirt.Secret{}, compat.Errorf(libvirt.ErrInternalError, compat.FromSecret, "cannot change private flag on existing secret")
		}
	} else if other := d.byUsage(nd.UsageType, nd.UsageID); other != nil {
		return libvirt.Secret{}, compat.Errorf(libvirt.ErrInternalError, compat.FromSecret,
			"a secret with UUID %s already defined for use with %s", compat.FormatUUID(other.def.UUID), nd.UsageID)
	}
	// Disk first, memory after: a failure leaves both as they were.
	switch {
	case !nd.Ephemeral:
		// A secret that was ephemeral has had its value in memory only.
		if old != nil && old.def.Ephemeral && old.value != nil {
			if err := d.store.saveValue(nd.UUID, old.value); err != nil {
				return libvirt.Secret{}, fmt.Errorf("define secret %s: %w", uuid, err)
			}
		}
		if err := d.store.saveConfig(nd); err != nil {
			if old == nil || old.def.Ephemeral {
				_ = d.store.remove(nd.UUID)
			}
			return libvirt.Secret{}, fmt.Errorf("define secret %s: %w", uuid, err)
		}
	case old != nil && !old.def.Ephemeral:
		// Persistent turned ephemeral: it leaves the disk, value included.
		if err := d.store.remove(nd.UUID); err != nil {
			return libvirt.Secret{}, fmt.Errorf("define secret %s: %w", uuid, err)
		}
	}
	o := old
	if o == nil {
		o = &object{}
		d.secrets[nd.UUID] = o
	}
	o.def = nd
	d.log.Debug("secret defined", "uuid", uuid, "usage", usageNames[nd.UsageType], "usage_id", nd.UsageID, "ephemeral", nd.Ephemeral, "private", nd.Private)
	d.emit(driver.SecretEvent{ID: libvirt.SecretEventIDLifecycle, Secret: o.ref(), Event: int32(libvirt.SecretEventDefined)})
	return o.ref(), nil
}

// UndefineSecret implements driver.Secrets: virSecretUndefine.
func (d *Driver) UndefineSecret(ctx context.Context, u libvirt.UUID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(u)
	if err != nil {
		return err
	}
	if err := d.store.remove(u); err != nil {
		return fmt.Errorf("undefine secret %s: %w", compat.FormatUUID(u), err)
	}
	delete(d.secrets, u)
	wipe(o.value)
	d.log.Debug("secret undefined", "uuid", compat.FormatUUID(u))
	d.emit(driver.SecretEvent{ID: libvirt.SecretEventIDLifecycle, Secret: o.ref(), Event: int32(libvirt.SecretEventUndefined)})
	return nil
}

// SecretXMLDesc implements driver.Secrets: virSecretGetXMLDesc.
func (d *Driver) SecretXMLDesc(ctx context.Context, u libvirt.UUID, flags uint32) (string, error) {
	if flags != 0 {
		return "", unsupportedFlags(flags, "secretGetXMLDesc")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(u)
	if err != nil {
		return "", err
	}
	doc, err := o.def.format()
	if err != nil {
		return "", fmt.Errorf("format secret %s: %w", compat.FormatUUID(u), err)
	}
	return doc, nil
}

// LookupSecretByUUID implements driver.Secrets.
func (d *Driver) LookupSecretByUUID(ctx context.Context, u libvirt.UUID) (libvirt.Secret, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(u)
	if err != nil {
		return libvirt.Secret{}, err
	}
	return o.ref(), nil
}

// LookupSecretByUsage implements driver.Secrets.
func (d *Driver) LookupSecretByUsage(ctx context.Context, usageType int32, usageID string) (libvirt.Secret, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.byUsage(libvirt.SecretUsageType(usageType), usageID)
	if o == nil {
		return libvirt.Secret{}, compat.Errorf(libvirt.ErrNoSecret, compat.FromSecret, "no secret with matching usage '%s'", usageID)
	}
	return o.ref(), nil
}

// listFlags are the virConnectListAllSecretsFlags libvirt 9.0 knows.
const listFlags = libvirt.ConnectListSecretsEphemeral | libvirt.ConnectListSecretsNoEphemeral |
	libvirt.ConnectListSecretsPrivate | libvirt.ConnectListSecretsNoPrivate

// ListAllSecrets implements driver.Secrets. Each pair of flags filters
// only when one of the two is given, as libvirt's virSecretObjMatch.
func (d *Driver) ListAllSecrets(ctx context.Context, flags libvirt.ConnectListAllSecretsFlags) ([]libvirt.Secret, error) {
	if flags&^listFlags != 0 {
		return nil, unsupportedFlags(uint32(flags), "secretConnectListAllSecrets")
	}
	match := func(on bool, yes, no libvirt.ConnectListAllSecretsFlags) bool {
		if flags&(yes|no) == 0 {
			return true
		}
		return on && flags&yes != 0 || !on && flags&no != 0
	}
	d.mu.Lock()
	out := make([]libvirt.Secret, 0, len(d.secrets))
	for _, o := range d.secrets {
		if match(o.def.Ephemeral, libvirt.ConnectListSecretsEphemeral, libvirt.ConnectListSecretsNoEphemeral) &&
			match(o.def.Private, libvirt.ConnectListSecretsPrivate, libvirt.ConnectListSecretsNoPrivate) {
			out = append(out, o.ref())
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b libvirt.Secret) int {
		return strings.Compare(compat.FormatUUID(a.UUID), compat.FormatUUID(b.UUID))
	})
	return out, nil
}

// SetSecretValue implements driver.Secrets: virSecretSetValue. The value
// of a persistent secret is on disk before the call returns.
func (d *Driver) SetSecretValue(ctx context.Context, u libvirt.UUID, value []byte, flags uint32) error {
	if flags != 0 {
		return unsupportedFlags(flags, "secretSetValue")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(u)
	if err != nil {
		return err
	}
	v := append(make([]byte, 0, len(value)), value...)
	if !o.def.Ephemeral {
		if err := d.store.saveValue(u, v); err != nil {
			return fmt.Errorf("set value of secret %s: %w", compat.FormatUUID(u), err)
		}
	}
	wipe(o.value)
	o.value = v
	d.log.Debug("secret value set", "uuid", compat.FormatUUID(u))
	d.emit(driver.SecretEvent{ID: libvirt.SecretEventIDValueChanged, Secret: o.ref()})
	return nil
}

// SecretValue implements driver.Secrets: virSecretGetValue. A private
// secret's value never leaves the daemon.
func (d *Driver) SecretValue(ctx context.Context, u libvirt.UUID, flags uint32) ([]byte, error) {
	if flags != 0 {
		return nil, unsupportedFlags(flags, "secretGetValue")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.get(u)
	if err != nil {
		return nil, err
	}
	if o.def.Private {
		return nil, compat.Errorf(libvirt.ErrInvalidSecret, compat.FromSecret, "secret is private")
	}
	if o.value == nil {
		return nil, compat.Errorf(libvirt.ErrNoSecret, compat.FromSecret, "secret '%s' does not have a value", compat.FormatUUID(u))
	}
	return append([]byte(nil), o.value...), nil
}

// wipe overwrites a value no longer in use, as libvirt does before
// freeing one, so it does not linger in the heap.
func wipe(b []byte) { clear(b) }
