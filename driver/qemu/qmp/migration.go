package qmp

import "context"

// Migration states (QEMU's MigrationStatus) as found in query-migrate's
// status and in MIGRATION events.
const (
	MigrationStatusNone           = "none"
	MigrationStatusSetup          = "setup"
	MigrationStatusCancelling     = "cancelling"
	MigrationStatusCancelled      = "cancelled"
	MigrationStatusActive         = "active"
	MigrationStatusPostcopyActive = "postcopy-active"
	MigrationStatusPostcopyPaused = "postcopy-paused"
	MigrationStatusPostcopyRecov  = "postcopy-recover"
	MigrationStatusCompleted      = "completed"
	MigrationStatusFailed         = "failed"
	MigrationStatusColo           = "colo"
	MigrationStatusPreSwitchover  = "pre-switchover"
	MigrationStatusDevice         = "device"
	MigrationStatusWaitUnplug     = "wait-unplug"
)

// MigrationInfo is query-migrate's answer. QEMU leaves out members that do
// not apply to the current state (before any migration the answer is {}),
// so optional numbers are pointers: nil means "not reported", which for
// e.g. Downtime differs from a reported 0. Status "" means none.
type MigrationInfo struct {
	Status string `json:"status,omitempty"`
	// RAM is present from setup on; Disk only for block migration.
	RAM         *MigrationStats   `json:"ram,omitempty"`
	Disk        *MigrationStats   `json:"disk,omitempty"`
	VFIO        *VFIOStats        `json:"vfio,omitempty"`
	XBZRLECache *XBZRLECacheStats `json:"xbzrle-cache,omitempty"`
	Compression *CompressionStats `json:"compression,omitempty"`
	// Times in milliseconds.
	TotalTime        *int64 `json:"total-time,omitempty"`
	ExpectedDowntime *int64 `json:"expected-downtime,omitempty"`
	Downtime         *int64 `json:"downtime,omitempty"`
	SetupTime        *int64 `json:"setup-time,omitempty"`
	// CPUThrottlePercentage is reported while auto-converge throttles.
	CPUThrottlePercentage *int64 `json:"cpu-throttle-percentage,omitempty"`
	// ErrorDesc is set when Status is failed.
	ErrorDesc string `json:"error-desc,omitempty"`
	// BlockedReasons lists why migration is currently impossible
	// (migration blockers), when there are any.
	BlockedReasons        []string `json:"blocked-reasons,omitempty"`
	PostcopyBlocktime     *int64   `json:"postcopy-blocktime,omitempty"`
	PostcopyVCPUBlocktime []int64  `json:"postcopy-vcpu-blocktime,omitempty"`
}

// MigrationStats is QEMU 7.2's MigrationStats. All members are always
// present when the enclosing object is.
type MigrationStats struct {
	Transferred int64 `json:"transferred"` // bytes
	Remaining   int64 `json:"remaining"`   // bytes
	Total       int64 `json:"total"`       // bytes
	Duplicate   int64 `json:"duplicate"`   // zero pages
	Skipped     int64 `json:"skipped"`     // always 0, deprecated
	Normal      int64 `json:"normal"`      // pages
	NormalBytes int64 `json:"normal-bytes"`
	// DirtyPagesRate is in pages per second.
	DirtyPagesRate int64 `json:"dirty-pages-rate"`
	// MBps is the throughput in megabits (not bytes) per second.
	MBps                    float64 `json:"mbps"`
	DirtySyncCount          int64   `json:"dirty-sync-count"`
	PostcopyRequests        int64   `json:"postcopy-requests"`
	PageSize                int64   `json:"page-size"`
	MultifdBytes            int64   `json:"multifd-bytes"`
	PagesPerSecond          int64   `json:"pages-per-second"`
	PrecopyBytes            int64   `json:"precopy-bytes"`
	DowntimeBytes           int64   `json:"downtime-bytes"`
	PostcopyBytes           int64   `json:"postcopy-bytes"`
	DirtySyncMissedZeroCopy int64   `json:"dirty-sync-missed-zero-copy"`
}

// VFIOStats is VfioStats.
type VFIOStats struct {
	Transferred int64 `json:"transferred"`
}

// XBZRLECacheStats is XBZRLECacheStats.
type XBZRLECacheStats struct {
	CacheSize     int64   `json:"cache-size"`
	Bytes         int64   `json:"bytes"`
	Pages         int64   `json:"pages"`
	CacheMiss     int64   `json:"cache-miss"`
	CacheMissRate float64 `json:"cache-miss-rate"`
	EncodingRate  float64 `json:"encoding-rate"`
	Overflow      int64   `json:"overflow"`
}

// CompressionStats is CompressionStats.
type CompressionStats struct {
	Pages           int64   `json:"pages"`
	Busy            int64   `json:"busy"`
	BusyRate        float64 `json:"busy-rate"`
	CompressedSize  int64   `json:"compressed-size"`
	CompressionRate float64 `json:"compression-rate"`
}

// QueryMigrate reports the state of the current or last outgoing (or
// incoming) migration ("query-migrate").
func (m *Monitor) QueryMigrate(ctx context.Context) (MigrationInfo, error) {
	var info MigrationInfo
	err := m.Run(ctx, "query-migrate", nil, &info)
	return info, err
}

// MigrationCapability is MigrationCapabilityStatus, e.g. {"xbzrle", true}.
type MigrationCapability struct {
	Capability string `json:"capability"`
	State      bool   `json:"state"`
}

// QueryMigrateCapabilities lists every migration capability QEMU knows
// with its state ("query-migrate-capabilities").
func (m *Monitor) QueryMigrateCapabilities(ctx context.Context) ([]MigrationCapability, error) {
	var caps []MigrationCapability
	err := m.Run(ctx, "query-migrate-capabilities", nil, &caps)
	return caps, err
}

// MigrateSetCapabilities sets the given capabilities, leaving the others
// alone ("migrate-set-capabilities").
func (m *Monitor) MigrateSetCapabilities(ctx context.Context, caps []MigrationCapability) error {
	if caps == nil {
		caps = []MigrationCapability{} // QEMU requires the member; null is not a list
	}
	return m.Run(ctx, "migrate-set-capabilities", struct {
		Capabilities []MigrationCapability `json:"capabilities"`
	}{caps}, nil)
}

// MigrationParameters covers every member of QEMU 7.2's
// MigrationParameters (what query-migrate-parameters reports) and
// MigrateSetParameters (what migrate-set-parameters takes): the two differ
// only in that the TLS members also accept null on input, and "" means the
// same. Nil members are not sent, so a partial struct changes only what it
// sets, and the struct read from QueryMigrateParameters can be written back
// unchanged to restore the parameters.
type MigrationParameters struct {
	AnnounceInitial *int64 `json:"announce-initial,omitempty"` // ms
	AnnounceMax     *int64 `json:"announce-max,omitempty"`     // ms
	AnnounceRounds  *int64 `json:"announce-rounds,omitempty"`
	AnnounceStep    *int64 `json:"announce-step,omitempty"` // ms

	CompressLevel      *int64 `json:"compress-level,omitempty"`
	CompressThreads    *int64 `json:"compress-threads,omitempty"`
	CompressWaitThread *bool  `json:"compress-wait-thread,omitempty"`
	DecompressThreads  *int64 `json:"decompress-threads,omitempty"`

	// ThrottleTriggerThreshold is the dirty/transferred ratio (percent)
	// above which auto-converge throttles.
	ThrottleTriggerThreshold *int64 `json:"throttle-trigger-threshold,omitempty"`
	CPUThrottleInitial       *int64 `json:"cpu-throttle-initial,omitempty"`   // percent
	CPUThrottleIncrement     *int64 `json:"cpu-throttle-increment,omitempty"` // percent
	CPUThrottleTailslow      *bool  `json:"cpu-throttle-tailslow,omitempty"`
	MaxCPUThrottle           *int64 `json:"max-cpu-throttle,omitempty"` // percent

	// TLS: the id of a tls-creds object ("" = no TLS), the hostname to
	// check the peer certificate against, the id of an authz object.
	TLSCreds    *string `json:"tls-creds,omitempty"`
	TLSHostname *string `json:"tls-hostname,omitempty"`
	TLSAuthz    *string `json:"tls-authz,omitempty"`

	MaxBandwidth         *int64 `json:"max-bandwidth,omitempty"`          // bytes/s
	DowntimeLimit        *int64 `json:"downtime-limit,omitempty"`         // ms
	MaxPostcopyBandwidth *int64 `json:"max-postcopy-bandwidth,omitempty"` // bytes/s, 0 = MaxBandwidth
	XCheckpointDelay     *int64 `json:"x-checkpoint-delay,omitempty"`     // ms, COLO
	BlockIncremental     *bool  `json:"block-incremental,omitempty"`
	XBZRLECacheSize      *int64 `json:"xbzrle-cache-size,omitempty"` // bytes

	MultifdChannels    *int64  `json:"multifd-channels,omitempty"`
	MultifdCompression *string `json:"multifd-compression,omitempty"` // none, zlib, zstd
	MultifdZlibLevel   *int64  `json:"multifd-zlib-level,omitempty"`
	MultifdZstdLevel   *int64  `json:"multifd-zstd-level,omitempty"`

	// BlockBitmapMapping is a pointer so that an empty mapping (which
	// resets to the default by-name mapping) can be sent.
	BlockBitmapMapping *[]BitmapMigrationNodeAlias `json:"block-bitmap-mapping,omitempty"`
}

// BitmapMigrationNodeAlias maps a block node's dirty bitmaps for migration.
type BitmapMigrationNodeAlias struct {
	NodeName string                       `json:"node-name"`
	Alias    string                       `json:"alias"`
	Bitmaps  []BitmapMigrationBitmapAlias `json:"bitmaps"`
}

// BitmapMigrationBitmapAlias maps one dirty bitmap for migration.
type BitmapMigrationBitmapAlias struct {
	Name      string `json:"name"`
	Alias     string `json:"alias"`
	Transform *struct {
		Persistent *bool `json:"persistent,omitempty"`
	} `json:"transform,omitempty"`
}

// QueryMigrateParameters reads the migration parameters
// ("query-migrate-parameters").
func (m *Monitor) QueryMigrateParameters(ctx context.Context) (MigrationParameters, error) {
	var p MigrationParameters
	err := m.Run(ctx, "query-migrate-parameters", nil, &p)
	return p, err
}

// MigrateSetParameters sets the non-nil members of p
// ("migrate-set-parameters").
func (m *Monitor) MigrateSetParameters(ctx context.Context, p MigrationParameters) error {
	return m.Run(ctx, "migrate-set-parameters", p, nil)
}

type migrateURI struct {
	URI string `json:"uri"`
}

// Migrate starts an outgoing migration to uri ("migrate"), e.g.
// "tcp:host:port", "unix:/path", "fd:name" (after GetFD) or
// "exec:cmd". It returns once the migration has started; follow it with
// MIGRATION events (enable the "events" capability) or QueryMigrate.
//
// Only "uri" is sent: in QEMU 7.2 "detach" is accepted but ignored (the
// command never blocks), "blk"/"inc" are superseded by the "block"
// capability and block-incremental parameter, and "resume" (postcopy
// recovery) defaults to false.
func (m *Monitor) Migrate(ctx context.Context, uri string) error {
	return m.Run(ctx, "migrate", migrateURI{uri}, nil)
}

// MigrateIncoming starts listening for an incoming migration on uri
// ("migrate-incoming"); QEMU must have been started with -incoming defer.
func (m *Monitor) MigrateIncoming(ctx context.Context, uri string) error {
	return m.Run(ctx, "migrate-incoming", migrateURI{uri}, nil)
}

// MigrateCancel cancels the outgoing migration ("migrate_cancel", with an
// underscore); the MIGRATION event with status cancelled follows.
func (m *Monitor) MigrateCancel(ctx context.Context) error {
	return m.Run(ctx, "migrate_cancel", nil, nil)
}

// MigrateContinue lets a migration paused in state (with the
// pause-before-switchover capability: "pre-switchover") proceed
// ("migrate-continue").
func (m *Monitor) MigrateContinue(ctx context.Context, state string) error {
	return m.Run(ctx, "migrate-continue", struct {
		State string `json:"state"`
	}{state}, nil)
}

// MigrateStartPostcopy switches the running outgoing migration to
// post-copy ("migrate-start-postcopy"; the postcopy-ram capability must
// be on on both sides). QEMU answers at once; the switch shows as the
// MIGRATION event with status postcopy-active.
func (m *Monitor) MigrateStartPostcopy(ctx context.Context) error {
	return m.Run(ctx, "migrate-start-postcopy", nil, nil)
}

// MigratePause breaks the connection of a migration in post-copy
// ("migrate-pause"): both QEMUs go to postcopy-paused and wait for a
// recovery. Out of band where QEMU allows it: a post-copy QEMU's main loop
// may be stuck waiting for a page.
func (m *Monitor) MigratePause(ctx context.Context) error {
	return m.RunOOB(ctx, "migrate-pause", nil, nil)
}

// MigrateRecover makes a destination in postcopy-paused listen on uri for
// the source to resume the migration ("migrate-recover"), out of band: the
// destination's main loop is typically stuck on a missing page then.
func (m *Monitor) MigrateRecover(ctx context.Context, uri string) error {
	return m.RunOOB(ctx, "migrate-recover", migrateURI{uri}, nil)
}

// MigrateResume reconnects a source in postcopy-paused to the destination
// listening on uri ("migrate" with resume).
func (m *Monitor) MigrateResume(ctx context.Context, uri string) error {
	return m.Run(ctx, "migrate", struct {
		URI    string `json:"uri"`
		Resume bool   `json:"resume"`
	}{uri, true}, nil)
}
