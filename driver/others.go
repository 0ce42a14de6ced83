package driver

import (
	"context"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Secrets is the secret driver, as libvirt's src/secret: implemented by
// driver/secret. Secrets are named by go-libvirt's Secret (UUID, usage
// type and usage id), as on the wire; the driver finds them by UUID.
//
// Values are secret: an implementation must never log them or put them in
// an error.
type Secrets interface {
	DefineSecret(ctx context.Context, xml string, flags uint32) (libvirt.Secret, error)
	UndefineSecret(ctx context.Context, uuid libvirt.UUID) error
	SecretXMLDesc(ctx context.Context, uuid libvirt.UUID, flags uint32) (string, error)
	LookupSecretByUUID(ctx context.Context, uuid libvirt.UUID) (libvirt.Secret, error)
	LookupSecretByUsage(ctx context.Context, usageType int32, usageID string) (libvirt.Secret, error)
	// ListAllSecrets returns the secrets matching libvirt's
	// virConnectListAllSecretsFlags, ordered by UUID.
	ListAllSecrets(ctx context.Context, flags libvirt.ConnectListAllSecretsFlags) ([]libvirt.Secret, error)
	SetSecretValue(ctx context.Context, uuid libvirt.UUID, value []byte, flags uint32) error
	SecretValue(ctx context.Context, uuid libvirt.UUID, flags uint32) ([]byte, error)
	// SetSecretEventSink tells the driver where to deliver secret events;
	// the sink must not block.
	SetSecretEventSink(func(SecretEvent))
}

// SecretEvent is a secret event for the clients that registered for it.
type SecretEvent struct {
	ID     libvirt.SecretEventID
	Secret libvirt.Secret
	// Event and Detail, for ID == SecretEventIDLifecycle
	// (virSecretEventLifecycleType).
	Event, Detail int32
}
