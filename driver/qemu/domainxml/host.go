// Package domainxml turns domain XML into the definition libvirt 9.0's QEMU
// driver would keep for it, and prints definitions back the way libvirt
// does. govirtd must store the same definition as libvirt because guests
// live-migrate between govirtd and real libvirtd hosts, and the XML a
// source sends is compared and re-parsed by the destination.
package domainxml

// Host is what this package needs to know about the host. *caps.Host
// satisfies it; tests use a fixed double so they do not depend on the
// machine's QEMU or KVM.
type Host interface {
	CanonicalMachine(arch, name string) (string, bool)
	DefaultMachine(arch string) string
	Emulator(arch string) string
	KVM() bool
}
