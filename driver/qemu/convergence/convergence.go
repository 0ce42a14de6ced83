// Package convergence is govirtd's convergence guard, which libvirt does
// not have: it watches a pre-copy migration's progress and, when the data
// left to send has stopped shrinking for a configured time, escalates in a
// declared order — throttle the guest's CPUs harder, switch to post-copy,
// abort with an error that says why. Management apps write this stall
// detector themselves around libvirt (KubeVirt's progress timeout, Nova's
// live_migration_completion_timeout); here it is one policy in the daemon.
//
// The package is the decision logic only: the driver feeds it samples of
// QEMU's query-migrate and carries out its decisions.
package convergence

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Action is one escalation step.
type Action string

// The actions, in the order they are usually declared.
const (
	// Throttle raises the auto-converge CPU throttle (the migration must
	// have been started with --auto-converge).
	Throttle Action = "throttle"
	// Postcopy switches to post-copy (the migration must have been
	// started with --postcopy).
	Postcopy Action = "postcopy"
	// Abort cancels the migration; the guest keeps running on the source.
	Abort Action = "abort"
)

// DefaultActions is the escalation order when none is configured.
var DefaultActions = []Action{Throttle, Postcopy, Abort}

// ParseActions reads a configured escalation order.
func ParseActions(names []string) ([]Action, error) {
	var out []Action
	seen := map[Action]bool{}
	for _, n := range names {
		a := Action(strings.TrimSpace(n))
		switch a {
		case Throttle, Postcopy, Abort:
		default:
			return nil, fmt.Errorf("unknown convergence guard action %q (want throttle, postcopy or abort)", n)
		}
		if seen[a] {
			return nil, fmt.Errorf("convergence guard action %q listed twice", n)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// Policy configures a guard.
type Policy struct {
	// Stall is how long the remaining data may go without shrinking
	// before the next action; 0 turns the guard off.
	Stall time.Duration
	// Actions is the escalation order (DefaultActions when empty).
	Actions []Action
	// MinShrink is the fraction by which the remaining data must fall
	// below its best value to count as progress (default 0.05): noise of
	// a few pages must not reset the clock.
	MinShrink float64
}

// Sample is one reading of the migration's progress.
type Sample struct {
	At        time.Time
	Remaining uint64 // bytes of RAM left to send
	Iteration uint64 // pre-copy passes so far (dirty-sync-count)
	DirtyRate uint64 // bytes/s the guest dirties
	Bandwidth uint64 // bytes/s QEMU sends
}

// Decision is what the guard asks for.
type Decision struct {
	Action Action
	// Reason says why, with the figures: what an operator reads in the
	// error, the log and the job statistics.
	Reason string
}

// Guard follows one migration. It is safe for concurrent use: the job
// statistics read its decisions while the migration feeds it.
type Guard struct {
	mu        sync.Mutex
	policy    Policy
	available map[Action]bool
	next      int
	best      uint64
	bestAt    time.Time
	bestIter  uint64
	started   bool
	decisions []Decision
}

// New returns a guard for one migration. available says which actions
// this migration can take (throttle needs auto-converge, postcopy needs
// VIR_MIGRATE_POSTCOPY); the others are passed over, and Skipped lists
// them.
func New(p Policy, available map[Action]bool) *Guard {
	if len(p.Actions) == 0 {
		p.Actions = DefaultActions
	}
	if p.MinShrink <= 0 {
		p.MinShrink = 0.05
	}
	return &Guard{policy: p, available: available}
}

// Enabled tells whether the guard watches at all.
func (g *Guard) Enabled() bool { return g != nil && g.policy.Stall > 0 }

// Skipped lists the declared actions this migration cannot take.
func (g *Guard) Skipped() []Action {
	var out []Action
	for _, a := range g.policy.Actions {
		if !g.available[a] {
			out = append(out, a)
		}
	}
	return out
}

// Decisions are the decisions taken so far, oldest first.
func (g *Guard) Decisions() []Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Decision(nil), g.decisions...)
}

// Observe takes a sample and returns the next action when the remaining
// data has not shrunk (by MinShrink) for the policy's Stall. After an
// action the clock starts again, so the action has the same time to work.
func (g *Guard) Observe(s Sample) (Decision, bool) {
	if !g.Enabled() {
		return Decision{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started || float64(s.Remaining) < float64(g.best)*(1-g.policy.MinShrink) {
		g.started = true
		g.best, g.bestAt, g.bestIter = s.Remaining, s.At, s.Iteration
		return Decision{}, false
	}
	stalled := s.At.Sub(g.bestAt)
	if stalled < g.policy.Stall {
		return Decision{}, false
	}
	for g.next < len(g.policy.Actions) && !g.available[g.policy.Actions[g.next]] {
		g.next++
	}
	if g.next >= len(g.policy.Actions) {
		return Decision{}, false // nothing left to try: libvirt's behaviour from here
	}
	d := Decision{Action: g.policy.Actions[g.next], Reason: fmt.Sprintf(
		"remaining %s has not shrunk by %.0f%% for %s over %d iterations; the guest dirties %s/s, %s/s is sent",
		mib(s.Remaining), g.policy.MinShrink*100, stalled.Round(time.Second), s.Iteration-g.bestIter, mib(s.DirtyRate), mib(s.Bandwidth))}
	g.next++
	g.decisions = append(g.decisions, d)
	// The action gets a full stall period from now.
	g.best, g.bestAt, g.bestIter = s.Remaining, s.At, s.Iteration
	return d, true
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
