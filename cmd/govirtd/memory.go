package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// releaseMemory gives idle heap back to the operating system once a burst
// of load is over. Go's runtime does this on its own only slowly (minutes),
// so a daemon that served a thousand clients would keep their memory long
// after they left; operators watch RSS.
//
// Two things hold memory after a burst: free heap not yet returned, and
// garbage the burst left behind, which stays in RSS until a collection runs
// (an idle daemon allocates nothing, so none would). Either above threshold
// gets a forced collection that also returns the freed pages.
func releaseMemory(ctx context.Context, every time.Duration, threshold uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, // live and not yet collected
		{Name: "/gc/heap/live:bytes"},                // live as of the last collection
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		if releasable(sampleUint(samples[0]), sampleUint(samples[1]), sampleUint(samples[2]), threshold) {
			debug.FreeOSMemory()
		}
	}
}

// releasable says whether free heap, or garbage not yet collected (objects
// minus what was live at the last collection), exceeds threshold bytes.
func releasable(free, objects, live, threshold uint64) bool {
	return free > threshold || (objects > live && objects-live > threshold)
}

func sampleUint(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}
