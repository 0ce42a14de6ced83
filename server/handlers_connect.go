package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// LibVersion is the libvirt version govirtd behaves as (9.0.0), reported by
// CONNECT_GET_LIB_VERSION.
const LibVersion = 9000000

// connectRO is VIR_CONNECT_RO in CONNECT_OPEN's flags.
const connectRO = 1

// registerHandlers binds every implemented procedure. Handlers are small:
// check, call the driver, shape the reply.
func registerHandlers(t *Table, s *Server) {
	t.AuthList(func(c *Call) (*libvirt.AuthListRet, error) {
		// REMOTE_AUTH_NONE: no authentication step follows.
		return &libvirt.AuthListRet{Types: []libvirt.AuthType{0}}, nil
	})
	t.ConnectOpen(s.connectOpen)
	t.ConnectClose(func(c *Call) error {
		c.Conn.opened.Store(false)
		return nil
	})
	t.ConnectSupportsFeature(s.connectSupportsFeature)
	t.ConnectGetType(func(c *Call) (*libvirt.ConnectGetTypeRet, error) {
		return &libvirt.ConnectGetTypeRet{Type: s.drv.Type()}, nil
	})
	t.ConnectGetVersion(func(c *Call) (*libvirt.ConnectGetVersionRet, error) {
		return &libvirt.ConnectGetVersionRet{HvVer: s.drv.Version()}, nil
	})
	t.ConnectGetLibVersion(func(c *Call) (*libvirt.ConnectGetLibVersionRet, error) {
		return &libvirt.ConnectGetLibVersionRet{LibVer: LibVersion}, nil
	})
	t.ConnectGetHostname(func(c *Call) (*libvirt.ConnectGetHostnameRet, error) {
		return &libvirt.ConnectGetHostnameRet{Hostname: s.drv.Hostname()}, nil
	})
	t.ConnectGetUri(func(c *Call) (*libvirt.ConnectGetUriRet, error) {
		return &libvirt.ConnectGetUriRet{Uri: s.drv.URI()}, nil
	})
	t.ConnectGetCapabilities(func(c *Call) (*libvirt.ConnectGetCapabilitiesRet, error) {
		return &libvirt.ConnectGetCapabilitiesRet{Capabilities: s.drv.Capabilities()}, nil
	})
	t.ConnectGetDomainCapabilities(func(c *Call, a *libvirt.ConnectGetDomainCapabilitiesArgs) (*libvirt.ConnectGetDomainCapabilitiesRet, error) {
		x, err := s.drv.DomainCapabilities(optString(a.Emulatorbin), optString(a.Arch), optString(a.Machine), optString(a.Virttype))
		return &libvirt.ConnectGetDomainCapabilitiesRet{Capabilities: x}, err
	})
	t.NodeGetInfo(func(c *Call) (*libvirt.NodeGetInfoRet, error) {
		ni := s.drv.NodeInfo()
		ret := &libvirt.NodeGetInfoRet{Memory: ni.Memory, Cpus: ni.CPUs, Mhz: ni.MHz, Nodes: ni.Nodes, Sockets: ni.Sockets, Cores: ni.Cores, Threads: ni.Threads}
		// char model[32], NUL-terminated: at most 31 characters.
		for i := 0; i < len(ni.Model) && i < len(ret.Model)-1; i++ {
			ret.Model[i] = int8(ni.Model[i])
		}
		return ret, nil
	})
	// The QEMU driver calls itself secure: it runs inside the daemon; the
	// client library adds what it knows of the transport.
	t.ConnectIsSecure(func(c *Call) (*libvirt.ConnectIsSecureRet, error) {
		return &libvirt.ConnectIsSecureRet{Secure: 1}, nil
	})
	t.ConnectRegisterCloseCallback(func(c *Call) error { return nil })
	t.ConnectUnregisterCloseCallback(func(c *Call) error { return nil })
	t.ConnectDomainEventCallbackRegisterAny(func(c *Call, a *libvirt.ConnectDomainEventCallbackRegisterAnyArgs) (*libvirt.ConnectDomainEventCallbackRegisterAnyRet, error) {
		var dom *libvirt.Domain
		if len(a.Dom) == 1 {
			dom = &a.Dom[0]
		}
		return &libvirt.ConnectDomainEventCallbackRegisterAnyRet{CallbackID: c.Conn.events.register(a.EventID, dom)}, nil
	})
	t.ConnectDomainEventCallbackDeregisterAny(func(c *Call, a *libvirt.ConnectDomainEventCallbackDeregisterAnyArgs) error {
		return c.Conn.events.deregister(a.CallbackID)
	})
	registerDomainListHandlers(t, s)
	registerDomainHandlers(t, s)
	registerEmptyDriverHandlers(t, s)
	registerConsoleHandlers(t, s)
	registerScreenshotHandlers(t, s)
	registerDiskErrorHandlers(t, s)
	if s.secrets != nil {
		registerSecretHandlers(t, s)
	}
	registerMigrationHandlers(t, s)
	registerSaveHandlers(t, s)
	registerSnapshotHandlers(t, s)
	registerDeviceHandlers(t, s)
	registerNodeHandlers(t, s)
	registerStatsHandlers(t, s)
}

func (s *Server) connectOpen(c *Call, a *libvirt.ConnectOpenArgs) error {
	if c.Conn.opened.Load() {
		return compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "connection already open")
	}
	name := optString(a.Name)
	if err := s.drv.AcceptsURI(name); err != nil {
		return err
	}
	if a.Flags&connectRO != 0 {
		c.Conn.readOnly = true
	}
	c.Conn.opened.Store(true)
	c.Conn.log.Debug("connection opened", "uri", name, "read_only", c.Conn.readOnly)
	return nil
}

func (s *Server) connectSupportsFeature(c *Call, a *libvirt.ConnectSupportsFeatureArgs) (*libvirt.ConnectSupportsFeatureRet, error) {
	f := compat.Feature(a.Feature)
	// PROGRAM_KEEPALIVE is about the connection, not the driver, so it is
	// answered before CONNECT_OPEN, and asking for it turns keepalive on.
	if f == compat.FeatureProgramKeepalive {
		c.Conn.startKeepalive()
		return &libvirt.ConnectSupportsFeatureRet{Supported: 1}, nil
	}
	if !c.Conn.opened.Load() {
		return nil, compat.Errorf(libvirt.ErrInternalError, compat.FromNone, "connection not open")
	}
	ret := &libvirt.ConnectSupportsFeatureRet{}
	if compat.Supports(f) {
		ret.Supported = 1
	}
	return ret, nil
}

// optString unwraps an optional string; absent is "".
func optString(o libvirt.OptString) string {
	if len(o) == 1 {
		return o[0]
	}
	return ""
}
