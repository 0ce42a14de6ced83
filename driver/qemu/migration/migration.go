// Package migration is the state machine of one live migration (libvirt's
// protocol v3) as one host sees it: a closed set of phases, the legal
// steps between them, and the undo work each step declares beside it.
//
//	source:      begin3 → perform3 → perform3_done → confirm3
//	                   ↘ confirm3_cancelled ↙ (from begin3 or perform3_done)
//	destination: prepare → finish3
//
// A post-copy migration (VIR_MIGRATE_POSTCOPY) that breaks after the
// switch goes to postcopy_failed on both hosts instead: from then on the
// guest's memory is split between them, so neither host may stop its
// QEMU or resume the source; only a recovery (VIR_MIGRATE_POSTCOPY_RESUME,
// the *_resume phases) or the operator's destroy ends it.
//
// A step asked for in the wrong phase is a typed error (*IllegalStepError),
// never a guess. The phase is persisted with the domain's status at every
// transition, so a restarted daemon can finish or undo what was running.
package migration

import (
	"encoding/json"
	"fmt"
	"time"
)

// Role is the side of the migration this host is on.
type Role string

// Roles.
const (
	Source      Role = "source"
	Destination Role = "destination"
)

// Phase is where a migration stands on this host.
type Phase string

// Phases. Their names are libvirt's (qemuMigrationJobPhase), so logs read
// the same.
const (
	None              Phase = ""
	Begin3            Phase = "begin3"
	Perform3          Phase = "perform3"
	Perform3Done      Phase = "perform3_done"
	Confirm3          Phase = "confirm3"
	Confirm3Cancelled Phase = "confirm3_cancelled"
	Prepare           Phase = "prepare"
	Finish3           Phase = "finish3"
	// PostcopyFailed: the connection broke in post-copy; both QEMUs wait
	// for a recovery.
	PostcopyFailed Phase = "postcopy_failed"
	// The phases of a recovery, libvirt's names.
	BeginResume   Phase = "begin_resume"
	PerformResume Phase = "perform_resume"
	ConfirmResume Phase = "confirm_resume"
	PrepareResume Phase = "prepare_resume"
	FinishResume  Phase = "finish_resume"
)

// transitions lists, per role, the phases each phase may move to.
var transitions = map[Role]map[Phase][]Phase{
	Source: {
		None:         {Begin3},
		Begin3:       {Perform3, Confirm3Cancelled},
		Perform3:     {Perform3Done},
		Perform3Done: {Confirm3, Confirm3Cancelled, PostcopyFailed},
		// A recovery that fails leaves the migration as it found it.
		PostcopyFailed: {BeginResume},
		BeginResume:    {PerformResume, PostcopyFailed},
		PerformResume:  {ConfirmResume, PostcopyFailed},
		ConfirmResume:  {PostcopyFailed},
	},
	Destination: {
		None:           {Prepare},
		Prepare:        {Finish3, PostcopyFailed},
		PostcopyFailed: {PrepareResume},
		PrepareResume:  {FinishResume, PostcopyFailed},
		FinishResume:   {PostcopyFailed},
	},
}

// IllegalStepError is a step asked for in a phase that does not allow it,
// e.g. Confirm on a domain that never began a migration.
type IllegalStepError struct {
	Role     Role
	From, To Phase
}

func (e *IllegalStepError) Error() string {
	return fmt.Sprintf("migration %s: cannot go from phase %q to %q", e.Role, e.From, e.To)
}

// Job is one migration as this host sees it. Its exported fields are what
// is persisted; they are enough to finish or undo it after a restart.
type Job struct {
	Role  Role   `json:"role"`
	Phase Phase  `json:"phase"`
	Flags uint64 `json:"flags"`
	// Started is when Begin (source) or Prepare (destination) ran.
	Started time.Time `json:"started"`
	// PeerHostname and PeerHostUUID identify the other host, from its cookie.
	PeerHostname string `json:"peer_hostname,omitempty"`
	PeerHostUUID string `json:"peer_host_uuid,omitempty"`
	// PeerURI is a libvirt URI of the other host when it is known (p2p's
	// dconnuri, or a govirtd peer's own URI from its cookie): with it this
	// host can ask whether the other one runs the guest.
	PeerURI string `json:"peer_uri,omitempty"`
	// DestName is the domain's name on the destination (--dname).
	DestName string `json:"dest_name,omitempty"`
	// CreatedImages are the disk images the destination created for a
	// storage migration: if it fails, even after a restart, they go.
	CreatedImages []string `json:"created_images,omitempty"`
	// NotRunningBefore: the guest was not running when the outgoing
	// migration began (libvirt's preMigrationState), so a failed
	// migration leaves it paused rather than resuming it.
	NotRunningBefore bool `json:"not_running_before,omitempty"`
	// ConnID is the client connection that owns the job (managed mode):
	// when it closes before the job ends, the job is cleaned up.
	ConnID uint64 `json:"-"`
}

// New starts a job in phase None.
func New(role Role, flags uint64) *Job {
	return &Job{Role: role, Flags: flags, Started: time.Now()}
}

// Can reports whether the job may move to phase to.
func (j *Job) Can(to Phase) bool {
	for _, p := range transitions[j.Role][j.Phase] {
		if p == to {
			return true
		}
	}
	return false
}

// Advance moves the job to phase to, or returns *IllegalStepError.
func (j *Job) Advance(to Phase) error {
	if !j.Can(to) {
		return &IllegalStepError{Role: j.Role, From: j.Phase, To: to}
	}
	j.Phase = to
	return nil
}

// Marshal and Unmarshal persist a job with the domain status.
func (j *Job) Marshal() (json.RawMessage, error) { return json.Marshal(j) }

// Unmarshal restores a persisted job.
func Unmarshal(b json.RawMessage) (*Job, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if _, ok := transitions[j.Role]; !ok {
		return nil, fmt.Errorf("persisted migration job has unknown role %q", j.Role)
	}
	return &j, nil
}

// Rollback collects the undo work of the steps done so far. A step adds
// its undo right after it succeeds; on failure Run undoes everything in
// reverse order; on success Discard drops it.
type Rollback struct {
	steps []undo
}

type undo struct {
	what string
	fn   func() error
}

// Add declares how to undo a step that just succeeded.
func (r *Rollback) Add(what string, fn func() error) {
	r.steps = append(r.steps, undo{what, fn})
}

// Run undoes every step, newest first, and returns the failures (undo
// keeps going: a failed undo must not stop the ones after it).
func (r *Rollback) Run() []error {
	var errs []error
	for i := len(r.steps) - 1; i >= 0; i-- {
		if err := r.steps[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", r.steps[i].what, err))
		}
	}
	r.steps = nil
	return errs
}

// Discard forgets the undo work: the steps are kept.
func (r *Rollback) Discard() { r.steps = nil }
