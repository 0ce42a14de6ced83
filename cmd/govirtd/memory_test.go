package main

import "testing"

func TestReleasable(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name                string
		free, objects, live uint64
		want                bool
	}{
		{"idle, nothing to give back", mb / 2, 3 * mb, 3 * mb, false},
		{"free heap after a burst", 4 * mb, 3 * mb, 3 * mb, true},
		{"garbage left by a burst, no collection since", mb / 2, 6 * mb, 2 * mb, true},
		{"a little garbage", mb / 2, 2*mb + mb/2, 2 * mb, false},
		{"live grew since the last collection", 0, 2 * mb, 3 * mb, false},
	} {
		if got := releasable(c.free, c.objects, c.live, mb); got != c.want {
			t.Errorf("%s: releasable = %v, want %v", c.name, got, c.want)
		}
	}
}
