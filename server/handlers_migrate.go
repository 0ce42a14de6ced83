package server

import (
	libvirt "github.com/digitalocean/go-libvirt"
)

// registerMigrationHandlers binds migration protocol v3 — the *_PARAMS
// procedures virsh 9.0 uses and the older fixed-argument ones, mapped onto
// the same driver calls — and the job procedures that go with it.
func registerMigrationHandlers(t *Table, s *Server) {
	drv := s.drv
	t.DomainMigrateBegin3Params(func(c *Call, a *libvirt.DomainMigrateBegin3ParamsArgs) (*libvirt.DomainMigrateBegin3ParamsRet, error) {
		cookie, xml, err := drv.MigrateBegin3(c.Ctx, a.Dom, a.Params, a.Flags)
		return &libvirt.DomainMigrateBegin3ParamsRet{CookieOut: cookie, XML: xml}, err
	})
	t.DomainMigratePrepare3Params(func(c *Call, a *libvirt.DomainMigratePrepare3ParamsArgs) (*libvirt.DomainMigratePrepare3ParamsRet, error) {
		cookie, uri, err := drv.MigratePrepare3(c.Ctx, a.Params, a.CookieIn, a.Flags)
		return &libvirt.DomainMigratePrepare3ParamsRet{CookieOut: cookie, UriOut: optOut(uri)}, err
	})
	// Tunnelled: the migration data follows the reply on this connection,
	// as a stream bound to the call.
	t.DomainMigratePrepareTunnel3Params(func(c *Call, a *libvirt.DomainMigratePrepareTunnel3ParamsArgs) (*libvirt.DomainMigratePrepareTunnel3ParamsRet, error) {
		st, err := c.OpenStream()
		if err != nil {
			return nil, err
		}
		cookie, err := drv.MigratePrepareTunnel3(c.Ctx, a.Params, a.CookieIn, a.Flags, st)
		return &libvirt.DomainMigratePrepareTunnel3ParamsRet{CookieOut: cookie}, err
	})
	t.DomainMigratePerform3Params(func(c *Call, a *libvirt.DomainMigratePerform3ParamsArgs) (*libvirt.DomainMigratePerform3ParamsRet, error) {
		cookie, err := drv.MigratePerform3(c.Ctx, a.Dom, optString(a.Dconnuri), a.Params, a.CookieIn, uint32(a.Flags))
		return &libvirt.DomainMigratePerform3ParamsRet{CookieOut: cookie}, err
	})
	t.DomainMigrateFinish3Params(func(c *Call, a *libvirt.DomainMigrateFinish3ParamsArgs) (*libvirt.DomainMigrateFinish3ParamsRet, error) {
		dom, cookie, err := drv.MigrateFinish3(c.Ctx, a.Params, a.CookieIn, a.Flags, a.Cancelled != 0)
		return &libvirt.DomainMigrateFinish3ParamsRet{Dom: dom, CookieOut: cookie}, err
	})
	t.DomainMigrateConfirm3Params(func(c *Call, a *libvirt.DomainMigrateConfirm3ParamsArgs) error {
		return drv.MigrateConfirm3(c.Ctx, a.Dom, a.Params, a.CookieIn, a.Flags, a.Cancelled != 0)
	})

	// The pre-params procedures carry the same information in fixed
	// arguments; they become typed parameters.
	t.DomainMigrateBegin3(func(c *Call, a *libvirt.DomainMigrateBegin3Args) (*libvirt.DomainMigrateBegin3Ret, error) {
		p := legacyParams(a.Xmlin, a.Dname, a.Bandwidth, nil)
		cookie, xml, err := drv.MigrateBegin3(c.Ctx, a.Dom, p, uint32(a.Flags))
		return &libvirt.DomainMigrateBegin3Ret{CookieOut: cookie, XML: xml}, err
	})
	t.DomainMigratePrepare3(func(c *Call, a *libvirt.DomainMigratePrepare3Args) (*libvirt.DomainMigratePrepare3Ret, error) {
		p := legacyParams(libvirt.OptString{a.DomXML}, a.Dname, a.Bandwidth, a.UriIn)
		cookie, uri, err := drv.MigratePrepare3(c.Ctx, p, a.CookieIn, uint32(a.Flags))
		return &libvirt.DomainMigratePrepare3Ret{CookieOut: cookie, UriOut: optOut(uri)}, err
	})
	t.DomainMigratePrepareTunnel3(func(c *Call, a *libvirt.DomainMigratePrepareTunnel3Args) (*libvirt.DomainMigratePrepareTunnel3Ret, error) {
		p := legacyParams(libvirt.OptString{a.DomXML}, a.Dname, a.Bandwidth, nil)
		st, err := c.OpenStream()
		if err != nil {
			return nil, err
		}
		cookie, err := drv.MigratePrepareTunnel3(c.Ctx, p, a.CookieIn, uint32(a.Flags), st)
		return &libvirt.DomainMigratePrepareTunnel3Ret{CookieOut: cookie}, err
	})
	t.DomainMigratePerform3(func(c *Call, a *libvirt.DomainMigratePerform3Args) (*libvirt.DomainMigratePerform3Ret, error) {
		p := legacyParams(a.Xmlin, a.Dname, a.Bandwidth, a.Uri)
		cookie, err := drv.MigratePerform3(c.Ctx, a.Dom, optString(a.Dconnuri), p, a.CookieIn, uint32(a.Flags))
		return &libvirt.DomainMigratePerform3Ret{CookieOut: cookie}, err
	})
	t.DomainMigrateFinish3(func(c *Call, a *libvirt.DomainMigrateFinish3Args) (*libvirt.DomainMigrateFinish3Ret, error) {
		p := legacyParams(nil, libvirt.OptString{a.Dname}, 0, a.Uri)
		dom, cookie, err := drv.MigrateFinish3(c.Ctx, p, a.CookieIn, uint32(a.Flags), a.Cancelled != 0)
		return &libvirt.DomainMigrateFinish3Ret{Dom: dom, CookieOut: cookie}, err
	})
	t.DomainMigrateConfirm3(func(c *Call, a *libvirt.DomainMigrateConfirm3Args) error {
		return drv.MigrateConfirm3(c.Ctx, a.Dom, nil, a.CookieIn, uint32(a.Flags), a.Cancelled != 0)
	})

	t.DomainGetJobInfo(func(c *Call, a *libvirt.DomainGetJobInfoArgs) (*libvirt.DomainGetJobInfoRet, error) {
		j, err := drv.GetJobInfo(c.Ctx, a.Dom)
		return &libvirt.DomainGetJobInfoRet{Type: j.Type, TimeElapsed: j.TimeElapsed, TimeRemaining: j.TimeRemaining,
			DataTotal: j.DataTotal, DataProcessed: j.DataProcessed, DataRemaining: j.DataRemaining,
			MemTotal: j.MemTotal, MemProcessed: j.MemProcessed, MemRemaining: j.MemRemaining,
			FileTotal: j.FileTotal, FileProcessed: j.FileProcessed, FileRemaining: j.FileRemaining}, err
	})
	t.DomainGetJobStats(func(c *Call, a *libvirt.DomainGetJobStatsArgs) (*libvirt.DomainGetJobStatsRet, error) {
		typ, params, err := drv.GetJobStats(c.Ctx, a.Dom, uint32(a.Flags))
		return &libvirt.DomainGetJobStatsRet{Type: typ, Params: params}, err
	})
	t.DomainAbortJob(func(c *Call, a *libvirt.DomainAbortJobArgs) error {
		return drv.AbortJob(c.Ctx, a.Dom)
	})
	t.DomainAbortJobFlags(func(c *Call, a *libvirt.DomainAbortJobFlagsArgs) error {
		return drv.AbortJobFlags(c.Ctx, a.Dom, a.Flags)
	})
	t.DomainMigrateGetCompressionCache(func(c *Call, a *libvirt.DomainMigrateGetCompressionCacheArgs) (*libvirt.DomainMigrateGetCompressionCacheRet, error) {
		size, err := drv.MigrateGetCompressionCache(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainMigrateGetCompressionCacheRet{CacheSize: size}, err
	})
	t.DomainMigrateSetCompressionCache(func(c *Call, a *libvirt.DomainMigrateSetCompressionCacheArgs) error {
		return drv.MigrateSetCompressionCache(c.Ctx, a.Dom, a.CacheSize, a.Flags)
	})
	t.DomainMigrateStartPostCopy(func(c *Call, a *libvirt.DomainMigrateStartPostCopyArgs) error {
		return drv.MigrateStartPostCopy(c.Ctx, a.Dom, a.Flags)
	})
	t.DomainMigrateSetMaxSpeed(func(c *Call, a *libvirt.DomainMigrateSetMaxSpeedArgs) error {
		return drv.MigrateSetMaxSpeed(c.Ctx, a.Dom, a.Bandwidth, a.Flags)
	})
	t.DomainMigrateGetMaxSpeed(func(c *Call, a *libvirt.DomainMigrateGetMaxSpeedArgs) (*libvirt.DomainMigrateGetMaxSpeedRet, error) {
		bw, err := drv.MigrateGetMaxSpeed(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainMigrateGetMaxSpeedRet{Bandwidth: bw}, err
	})
	t.DomainMigrateSetMaxDowntime(func(c *Call, a *libvirt.DomainMigrateSetMaxDowntimeArgs) error {
		return drv.MigrateSetMaxDowntime(c.Ctx, a.Dom, a.Downtime, a.Flags)
	})
	t.DomainMigrateGetMaxDowntime(func(c *Call, a *libvirt.DomainMigrateGetMaxDowntimeArgs) (*libvirt.DomainMigrateGetMaxDowntimeRet, error) {
		ms, err := drv.MigrateGetMaxDowntime(c.Ctx, a.Dom, a.Flags)
		return &libvirt.DomainMigrateGetMaxDowntimeRet{Downtime: ms}, err
	})
}

// legacyParams expresses the fixed arguments of the pre-params migration
// procedures as the typed parameters they stand for.
func legacyParams(xml, dname libvirt.OptString, bandwidth uint64, uri libvirt.OptString) []libvirt.TypedParam {
	var p []libvirt.TypedParam
	add := func(name string, v *libvirt.TypedParamValue) {
		p = append(p, libvirt.TypedParam{Field: name, Value: *v})
	}
	if bandwidth > 0 {
		add("bandwidth", libvirt.NewTypedParamValueUllong(bandwidth))
	}
	if s := optString(uri); s != "" {
		add("migrate_uri", libvirt.NewTypedParamValueString(s))
	}
	if s := optString(dname); s != "" {
		add("destination_name", libvirt.NewTypedParamValueString(s))
	}
	if s := optString(xml); s != "" {
		add("destination_xml", libvirt.NewTypedParamValueString(s))
	}
	return p
}

// optOut makes an optional string of a possibly empty one.
func optOut(s string) libvirt.OptString {
	if s == "" {
		return nil
	}
	return libvirt.OptString{s}
}
