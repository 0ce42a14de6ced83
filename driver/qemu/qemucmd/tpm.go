package qemucmd

// tpms gives QEMU the guest's emulated TPM: the swtpm process's control
// socket (started by the driver before QEMU, Options.TPMSocket), the
// emulator backend on it and the TIS or CRB front end, as libvirt 9.0.
func (b *builder) tpms() error {
	d := b.dom.Devices
	if len(d.TPMs) == 0 {
		return nil
	}
	if len(d.TPMs) > 1 {
		return unsupported("more than one <tpm> device")
	}
	tpm := &d.TPMs[0]
	if tpm.Backend == nil || tpm.Backend.Emulator == nil {
		return unsupported("<tpm> backends other than 'emulator'")
	}
	if b.opts.TPMSocket == "" {
		return unsupported("<tpm>: no swtpm socket")
	}
	model := tpm.Model
	if model == "" {
		model = "tpm-tis"
	}
	id := alias(tpm.Alias)
	b.arg("-chardev", "socket,id=chrtpm,path="+b.opts.TPMSocket)
	b.arg("-tpmdev", "emulator,id=tpm-"+id+",chardev=chrtpm")
	b.arg("-device", newProps().add("driver", model).add("tpmdev", "tpm-"+id).add("id", id).String())
	return nil
}
