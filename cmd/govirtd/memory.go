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
func releaseMemory(ctx context.Context, every time.Duration, threshold uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > threshold {
			debug.FreeOSMemory()
		}
	}
}
