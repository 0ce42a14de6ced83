package server

import (
	"io"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/driver"
)

// registerConsoleHandlers binds DOMAIN_OPEN_CONSOLE (virsh console) when
// the driver has consoles: a duplex stream between the client and the
// console's pty, for as long as either side keeps it.
func registerConsoleHandlers(t *Table, s *Server) {
	consoles, ok := s.drv.(driver.DomainConsoles)
	if !ok {
		return
	}
	t.DomainOpenConsole(func(c *Call, a *libvirt.DomainOpenConsoleArgs) error {
		dev := ""
		if len(a.DevName) > 0 {
			dev = a.DevName[0]
		}
		con, err := consoles.OpenConsole(c.Ctx, a.Dom, dev, libvirt.DomainConsoleFlags(a.Flags))
		if err != nil {
			return err
		}
		st, err := c.OpenDuplexStream()
		if err != nil {
			con.Close()
			return err
		}
		go pumpConsole(st, con)
		return nil
	})
}

// pumpConsole copies the console's output to the client and the client's
// input to the console. The console's end (the domain stopped, a forced
// open took it over) ends the stream; the client's end closes the
// console.
func pumpConsole(st *Stream, con io.ReadWriteCloser) {
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := st.Read(buf)
			if n > 0 {
				if _, werr := con.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// The client finished or aborted: the output side stops too.
		con.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := con.Read(buf)
		if n > 0 && st.Send(buf[:n]) != nil {
			break
		}
		if err != nil {
			_ = st.SendEOF()
			break
		}
	}
	con.Close()
}
