package driver

// Storage is the storage driver (pools and volumes), as libvirt's
// src/storage: implemented by driver/storage.
type Storage interface{}

// Secrets is the secret driver, as libvirt's src/secret: implemented by
// driver/secret.
type Secrets interface{}
