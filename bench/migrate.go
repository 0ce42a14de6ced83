package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// pair is two hosts of one kind and a guest that moves between them; cur
// is the host that runs it now.
type pair struct {
	kind  string
	hosts [2]*host
	cur   int
	guest string
}

func (p *pair) src() *host { return p.hosts[p.cur] }
func (p *pair) dst() *host { return p.hosts[1-p.cur] }

// guestXML is the test guest (test/guest), like GuestXML in
// test/compat/guest_test.go, with a fixed UUID so that the same definition
// can live on both hosts of a pair.
func guestXML(name, uuid, kernel, initrd, serial string, dirty bool) string {
	extra := ""
	if dirty {
		extra = " dirty_mb=32 dirty_rate_mb=20"
	}
	return guestXMLWith(name, uuid, kernel, initrd, serial, 128, extra)
}

// guestXMLWith is guestXML with a memory size and extra kernel arguments.
func guestXMLWith(name, uuid, kernel, initrd, serial string, memMiB int, extra string) string {
	cmdline := "console=ttyS0 quiet cryptomgr.notests acpi=off pti=on tick_ms=200" + extra
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <uuid>%s</uuid>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>%s</cmdline>
  </os>
  <devices>
    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
`, name, uuid, memMiB, kernel, initrd, cmdline, serial)
}

// defineOnBoth defines the guest on both hosts: a migration then leaves it
// persistent wherever it lands, and domjobinfo --completed keeps working on
// the source, whichever direction it went.
func (p *pair) defineOnBoth(xml string) error {
	for _, h := range p.hosts {
		l, err := h.dial()
		if err != nil {
			return err
		}
		_, err = l.DomainDefineXML(xml)
		l.Disconnect()
		if err != nil {
			return fmt.Errorf("define guest on %s %s: %w", h.kind, h.name, err)
		}
	}
	return nil
}

// startGuest starts the guest on the current host and waits (at most 90 s)
// for its first tick on the serial console, so migrations move a booted
// guest.
func (p *pair) startGuest(serial string) error {
	l, err := p.src().dial()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	d, err := l.DomainLookupByName(p.guest)
	if err != nil {
		return err
	}
	if err := l.DomainCreate(d); err != nil {
		return fmt.Errorf("start %s on %s: %w", p.guest, p.kind, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(serial)
		if strings.Contains(string(b), "GUEST TICK") {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("guest %s on %s printed no tick within 90 s", p.guest, p.kind)
}

// setPaused suspends (true) or resumes the pair's guest where it runs.
func (p *pair) setPaused(paused bool) error {
	l, err := p.src().dial()
	if err != nil {
		return err
	}
	defer l.Disconnect()
	d, err := l.DomainLookupByName(p.guest)
	if err != nil {
		return err
	}
	if paused {
		err = l.DomainSuspend(d)
	} else {
		err = l.DomainResume(d)
	}
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", map[bool]string{true: "suspend", false: "resume"}[paused], p.guest, p.src().name, err)
	}
	return nil
}

// alone runs fn with the guests of the other pairs paused, so that one
// daemon's migration does not share the 2 cores with the other daemon's
// running TCG guest (a guest dirtying memory keeps a core busy).
func alone(p *pair, pairs []*pair, fn func() error) error {
	var paused []*pair
	defer func() {
		for _, o := range paused {
			if err := o.setPaused(false); err != nil {
				logf("%v", err)
			}
		}
	}()
	for _, o := range pairs {
		if o == p {
			continue
		}
		if err := o.setPaused(true); err != nil {
			return err
		}
		paused = append(paused, o)
	}
	return fn()
}

// removeGuest destroys the guest wherever it runs and undefines it on both
// hosts. Errors are ignored: this is clean-up.
func (p *pair) removeGuest() {
	for _, h := range p.hosts {
		l, err := h.dial()
		if err != nil {
			continue
		}
		if d, err := l.DomainLookupByName(p.guest); err == nil {
			l.DomainDestroy(d)
			l.DomainUndefine(d)
		}
		l.Disconnect()
	}
}

// migResult is one `virsh migrate` run.
type migResult struct {
	wall     time.Duration
	elapsed  time.Duration // domjobinfo --completed "Time elapsed" on the source
	downtime time.Duration // "Total downtime"
}

var (
	reElapsed  = regexp.MustCompile(`Time elapsed:\s+(\d+)\s*ms`)
	reDowntime = regexp.MustCompile(`Total downtime:\s+(\d+)\s*ms`)
)

// virshMigrate moves the guest to the other host with virsh (whole-process
// wall time) and reads the source's completed-job statistics.
func (p *pair) virshMigrate(p2p bool, bandwidth int, extra ...string) (migResult, error) {
	var r migResult
	args := []string{"-c", p.src().uri(), "migrate", "--live"}
	if p2p {
		args = append(args, "--p2p")
	}
	if bandwidth > 0 {
		args = append(args, "--bandwidth", strconv.Itoa(bandwidth))
	}
	args = append(args, extra...)
	args = append(args, p.guest, p.dst().uri())
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "virsh", args...).CombinedOutput()
	r.wall = time.Since(t0)
	if err != nil {
		return r, fmt.Errorf("virsh migrate on %s: %v: %s", p.kind, err, strings.TrimSpace(string(out)))
	}
	src := p.src()
	p.cur = 1 - p.cur
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	out, err = exec.CommandContext(ctx2, "virsh", "-c", src.uri(), "domjobinfo", "--completed", p.guest).CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("domjobinfo --completed on %s: %v: %s", p.kind, err, strings.TrimSpace(string(out)))
	}
	m1, m2 := reElapsed.FindSubmatch(out), reDowntime.FindSubmatch(out)
	if m1 == nil || m2 == nil {
		return r, fmt.Errorf("domjobinfo --completed on %s: no elapsed/downtime in %q", p.kind, out)
	}
	ms1, _ := strconv.Atoi(string(m1[1]))
	ms2, _ := strconv.Atoi(string(m2[1]))
	r.elapsed, r.downtime = time.Duration(ms1)*time.Millisecond, time.Duration(ms2)*time.Millisecond
	return r, nil
}

// statusDuringMigration runs a managed `virsh migrate --bandwidth bw` and,
// on a separate connection to the source, issues GetJobInfo and GetInfo
// back to back until virsh exits, returning each call's round-trip time.
// A call that fails (the guest has left) still counts: the caller waited
// that long for an answer.
func (p *pair) statusDuringMigration(bw int) ([]time.Duration, time.Duration, error) {
	src := p.src()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(src.addr, strconv.Itoa(src.port)), 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(c))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		c.Close()
		return nil, 0, err
	}
	d, err := l.DomainLookupByName(p.guest)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	stop := make(chan struct{})
	var lats []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Bounded by the migration's own 120 s cap and 200k calls.
		for i := 0; i < 200000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			if i%2 == 0 {
				l.DomainGetJobInfo(d)
			} else {
				l.DomainGetInfo(d)
			}
			lats = append(lats, time.Since(t0))
			// Ask as a monitoring loop would, not as fast as possible.
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r, merr := p.virshMigrate(false, bw)
	close(stop)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(15 * time.Second):
		// A call still blocked after the migration ended: cut it loose.
		c.Close()
		<-waited
	}
	l.Disconnect()
	c.Close()
	return lats, r.wall, merr
}

// step names the five calls of a client-managed migration v3.
var stepNames = []string{"Begin", "Prepare", "Perform", "Finish", "Confirm"}

func strParam(k, v string) libvirt.TypedParam {
	return libvirt.TypedParam{Field: k, Value: *libvirt.NewTypedParamValueString(v)}
}

// driveMigration does what `virsh migrate --live` does (libvirt's
// virDomainMigrateVersion3Full with params), timing each step as the
// client sees it: Begin3 on the source, Prepare3 on the destination (which
// starts the incoming QEMU), Perform3 on the source (the transfer),
// Finish3 on the destination, Confirm3 on the source. Flags: VIR_MIGRATE_LIVE
// plus CHANGE_PROTECTION on source-side calls (0x101), LIVE on the
// destination (0x1).
func (p *pair) driveMigration() ([]time.Duration, error) {
	src, dst := p.src(), p.dst()
	ls, err := src.dial()
	if err != nil {
		return nil, err
	}
	defer ls.Disconnect()
	ld, err := dst.dial()
	if err != nil {
		return nil, err
	}
	defer ld.Disconnect()
	dom, err := ls.DomainLookupByName(p.guest)
	if err != nil {
		return nil, err
	}
	const srcFlags, dstFlags = 0x101, 0x1
	steps := make([]time.Duration, 0, 5)
	t := time.Now()
	lap := func() {
		now := time.Now()
		steps = append(steps, now.Sub(t))
		t = now
	}
	cookie, xml, err := ls.DomainMigrateBegin3Params(dom, nil, srcFlags)
	if err != nil {
		return nil, fmt.Errorf("Begin3: %w", err)
	}
	lap()
	cookie, uriOut, err := ld.DomainMigratePrepare3Params([]libvirt.TypedParam{strParam("destination_xml", xml)}, cookie, dstFlags)
	if err != nil {
		return nil, fmt.Errorf("Prepare3: %w", err)
	}
	if len(uriOut) == 0 {
		return nil, errors.New("Prepare3 returned no URI")
	}
	lap()
	params := []libvirt.TypedParam{strParam("destination_xml", xml), strParam("migrate_uri", uriOut[0])}
	cookie, err = ls.DomainMigratePerform3Params(dom, nil, params, cookie, srcFlags)
	params = append(params, strParam("destination_name", p.guest))
	if err != nil {
		// As the client library does: tell the destination to drop its
		// incoming guest.
		ld.DomainMigrateFinish3Params(params, nil, dstFlags, 1)
		return nil, fmt.Errorf("Perform3: %w", err)
	}
	lap()
	_, cookie, ferr := ld.DomainMigrateFinish3Params(params, cookie, dstFlags, 0)
	lap()
	cancelled := int32(0)
	if ferr != nil {
		cancelled = 1
	}
	if err := ls.DomainMigrateConfirm3Params(dom, params, cookie, srcFlags, cancelled); err != nil {
		return nil, fmt.Errorf("Confirm3: %w", err)
	}
	lap()
	if ferr != nil {
		return nil, fmt.Errorf("Finish3: %w", ferr)
	}
	p.cur = 1 - p.cur
	return steps, nil
}

func durPercentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)))
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
