package process

import (
	"os"
	"testing"
)

func TestParseThreadStat(t *testing.T) {
	// A QEMU vCPU thread's stat (QEMU 7.2 names it "CPU 0/TCG").
	line := "4242 (CPU 0/TCG) S 1 4240 4240 0 -1 4194368 2197 0 0 0 150 51 0 0 20 0 3 0 12345 1234567168 51744 " +
		"18446744073709551615 1 1 0 0 0 0 0 4096 134223490 0 0 0 -1 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	st, err := parseThreadStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUTime != 201*10_000_000 || st.CPU != 1 {
		t.Errorf("got %+v, want 2.01 s on CPU 1", st)
	}
	if _, err := parseThreadStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short line parsed")
	}
}

func TestReadThreadStatSelf(t *testing.T) {
	pid := os.Getpid()
	if _, err := ReadThreadStat(pid, pid); err != nil {
		t.Fatal(err)
	}
	if rss, err := RSS(pid); err != nil || rss == 0 {
		t.Fatalf("RSS = %d, %v", rss, err)
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS([]byte("Name:\tqemu-system-x86\nVmHWM:\t  210000 kB\nVmRSS:\t  206976 kB\nThreads:\t5\n"))
	if err != nil || got != 206976 {
		t.Errorf("got %d, %v", got, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Error("no VmRSS, no error")
	}
}
