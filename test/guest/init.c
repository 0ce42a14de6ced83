/*
 * init.c - PID 1 of the govirtd test guest.
 *
 * The guest exists to prove, over its serial console, that it is alive and
 * that its running state survives live migration:
 *
 *   GUEST BOOT id=<bootid>                      once, as early as possible
 *   GUEST CONFIG id=<bootid> tick_ms=.. ...     once, the parsed options
 *   GUEST TICK id=<bootid> n=<n> mism=<m> pages=<p>   every tick, n = 1, 2, ...
 *   GUEST VERIFY id=<bootid> n=<k> bad=<b> mism=<m>   after each full pass
 *   GUEST MISMATCH id=<bootid> page=.. | counter ...   first few mismatches
 *   GUEST ERROR <what>                          something failed; ticking goes on
 *   GUEST DISK id=<bootid> n=<k> written=<w> checked=<c> dmism=<d>
 *                                               after each check of the disk blocks
 *   GUEST DISK MISMATCH id=<bootid> block=..    first few bad blocks
 *
 * A migrated guest keeps its id and its tick counter keeps rising by one
 * (a reboot would print a new BOOT line and restart n at 1).  mism counts
 * pages whose content is not what this program last wrote there, plus ticks
 * at which the count of rewritten pages disagrees with the tick counter:
 * either means memory writes were lost or corrupted on the way.
 *
 * Options come from the kernel command line (/proc/cmdline):
 *   tick_ms=N        tick period in milliseconds (default 200)
 *   dirty_mb=N       MiB of memory to keep tagged and to dirty (default 0)
 *   dirty_rate_mb=N  MiB per second to rewrite, spread over the ticks (default 0)
 *   dirty_sparse=1   a rewrite changes only a page's header words (its
 *                    generation and checksum), the rest keeps its first
 *                    content: every page is still dirtied and checked in
 *                    full, but a delta encoding (XBZRLE) sends a few bytes
 *                    of it instead of the page
 *   boot_id=S        id to print instead of a random 64-bit hex value
 *   disk_blocks=N    4 KiB blocks at the start of /dev/vda to keep writing
 *                    and checking (default 0: the disk is left alone)
 *   disk_rate=N      blocks written per tick (default 4)
 *
 * The disk blocks prove a storage migration: each write is numbered and
 * its content derives from the boot id, the block and that number; what
 * this program last wrote to each block is in its memory (which migrates
 * with it), and every few seconds it reads every written block back from
 * the disk, bypassing the page cache.  dmism counts blocks whose content
 * is not the last write: data lost or corrupted on the way.
 *
 * With ACPI (no acpi=off on the command line, <acpi/> in the domain), it
 * also answers the ACPI power button as a real OS does: it prints
 *   GUEST POWERDOWN id=<bootid>
 * and powers the machine off (libvirt's shutdown, and reboot, which is a
 * shutdown that libvirt turns into a reset).  The two modules that
 * deliver the button, button.ko and evdev.ko, are in the initramfs's
 * /modules.
 *
 * It must never exit: the kernel panics when PID 1 dies.  Build statically
 * (gcc -static), since the initramfs holds only the modules besides.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004 /* Linux >= 5.6; older glibc headers lack it */
#endif

#define WORDS_PER_LINE 8          /* 64-byte cache line / 8-byte word */
#define MAX_MISMATCH_LINES 20     /* detail lines; the count goes on regardless */
#define PAGE_MAGIC UINT64_C(0x4755455354504147) /* "GUESTPAG" */

static int con = -1;              /* console fd every line is written to */
static char boot_id[65];          /* printable id, from cmdline or random */
static uint64_t id_hash;          /* boot id folded to 64 bits, put in every page */

static unsigned long tick_ms = 200;
static unsigned long dirty_mb;
static unsigned long dirty_rate_mb;
static unsigned long dirty_sparse;
static unsigned long disk_blocks;
static unsigned long disk_rate = 4;

static unsigned char *area;       /* the dirtied memory, NULL if none */
static size_t page_size = 4096;
static size_t npages;
static uint64_t rate_pages;       /* pages to rewrite per second */
/* Rewrites since boot (not counting the initial fill).  It is the only
 * bookkeeping: which page comes next and which generation every page must
 * hold both follow from it (see want_gen).  It lives in .bss, apart from the
 * area and from the tick counter, so a migration that drops a batch of
 * writes cannot drop them "consistently" from all three unnoticed. */
static uint64_t pages_rewritten;
static uint64_t mism;             /* total mismatches seen */
static uint64_t mismatch_lines;
static uint64_t verifies;

/* ---- output --------------------------------------------------------- */

/* Print one line with a single write(2): no stdio buffer can hold output
 * back, and the line is not split by other writers. */
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(con, buf + off, n - off);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return; /* nowhere else to report it */
		}
		off += w;
	}
}

/* The kernel gives init fds 0-2 on /dev/console only if the initramfs has
 * that node.  Mount devtmpfs ourselves (the kernel does not: no
 * CONFIG_DEVTMPFS_MOUNT) and open the console from there, so either way the
 * output reaches ttyS0 when the command line says console=ttyS0. */
static void setup_console(void)
{
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL); /* EBUSY if already: fine */
	const char *paths[] = { "/dev/console", "/dev/ttyS0" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0] && con < 0; i++)
		con = open(paths[i], O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (con < 0)
		con = 1; /* whatever the kernel gave us */
}

/* ---- options and id ------------------------------------------------- */

static uint64_t mix64(uint64_t x) /* splitmix64 finaliser: cheap, well spread */
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

/* Option errors are found before the id is known; keep them until after the
 * BOOT line, which readers expect to come first. */
static char cmdline_errors[1024];

static unsigned long parse_num(const char *s, const char *name, unsigned long def)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		size_t used = strlen(cmdline_errors);
		snprintf(cmdline_errors + used, sizeof cmdline_errors - used,
			 " bad %s=%.40s, using %lu;", name, s, def);
		return def;
	}
	return v;
}

static void parse_cmdline(void)
{
	static char line[4096];
	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", 0, NULL) < 0 && errno != EBUSY)
		say("GUEST ERROR mount /proc: %s", strerror(errno));
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("GUEST ERROR open /proc/cmdline: %s", strerror(errno));
		return;
	}
	ssize_t n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n <= 0)
		return;
	line[n] = 0;

	/* Space separated words; the kernel's quoting is not needed for ours. */
	for (char *save, *w = strtok_r(line, " \t\n", &save); w;
	     w = strtok_r(NULL, " \t\n", &save)) {
		if (!strncmp(w, "tick_ms=", 8))
			tick_ms = parse_num(w + 8, "tick_ms", 200);
		else if (!strncmp(w, "dirty_mb=", 9))
			dirty_mb = parse_num(w + 9, "dirty_mb", 0);
		else if (!strncmp(w, "dirty_rate_mb=", 14))
			dirty_rate_mb = parse_num(w + 14, "dirty_rate_mb", 0);
		else if (!strncmp(w, "dirty_sparse=", 13))
			dirty_sparse = parse_num(w + 13, "dirty_sparse", 0);
		else if (!strncmp(w, "disk_blocks=", 12))
			disk_blocks = parse_num(w + 12, "disk_blocks", 0);
		else if (!strncmp(w, "disk_rate=", 10))
			disk_rate = parse_num(w + 10, "disk_rate", 4);
		else if (!strncmp(w, "boot_id=", 8) && w[8]) {
			/* Keep only printable characters so lines stay parseable. */
			size_t j = 0;
			for (const char *p = w + 8; *p && j < sizeof boot_id - 1; p++)
				if (*p > ' ' && *p < 127)
					boot_id[j++] = *p;
			boot_id[j] = 0;
		}
	}
	if (tick_ms == 0) {
		size_t used = strlen(cmdline_errors);
		snprintf(cmdline_errors + used, sizeof cmdline_errors - used,
			 " bad tick_ms=0, using 200;");
		tick_ms = 200;
	}
}

/* A fresh random id per boot tells a reboot (new id) from a migration (same
 * id).  getrandom may block early in boot while the CRNG is not ready, so
 * never wait for it: take what is there and mix in clocks, which differ
 * between boots anyway. */
static void make_boot_id(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r &&
	    getrandom(&r, sizeof r, GRND_INSECURE) != sizeof r) {
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (read(fd, &r, sizeof r) != sizeof r)
				r = 0;
			close(fd);
		}
	}
	struct timespec rt, mt;
	clock_gettime(CLOCK_REALTIME, &rt);  /* from the RTC at boot */
	clock_gettime(CLOCK_MONOTONIC, &mt); /* jitter of this boot */
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	r ^= mix64((uint64_t)rt.tv_sec * 1000000000u + rt.tv_nsec);
	r ^= mix64(((uint64_t)hi << 32 | lo) ^ ((uint64_t)mt.tv_nsec << 17));
	snprintf(boot_id, sizeof boot_id, "%016" PRIx64, mix64(r));
}

/* ---- memory tagging ------------------------------------------------- */

/* Page layout (64-bit words):
 *   w[0] = PAGE_MAGIC ^ id_hash   (whose page: this boot's)
 *   w[1] = page index             (which page: catches pages swapped around)
 *   w[2] = generation             (which write: catches stale/lost pages)
 *   w[3] = checksum of w[0..2]
 *   w[8k], k = 1..63              first word of every other cache line, a
 *                                 value derived from (id, index, generation),
 *                                 so damage anywhere in the page is seen.
 * A page that migration failed to copy after its last rewrite still holds
 * an older generation and so fails the check. */
static uint64_t fill_word(size_t idx, uint32_t gen, size_t k)
{
	if (dirty_sparse)
		gen = 1; /* the body never changes after the first write */
	return mix64(mix64(id_hash ^ idx) ^ ((uint64_t)gen << 32) ^ k);
}

static uint64_t *page_words(size_t idx)
{
	return (uint64_t *)(area + idx * page_size);
}

/* Pages are rewritten in order 0, 1, ..., npages-1, 0, ...; the fill wrote
 * generation 1 everywhere.  So after P rewrites, page idx holds generation
 * 1 + (full cycles done) + (1 if this cycle already passed it). */
static uint32_t want_gen(size_t idx, uint64_t p)
{
	return (uint32_t)(1 + p / npages + (idx < p % npages));
}

static void write_page(size_t idx, uint32_t gen)
{
	uint64_t *w = page_words(idx);
	w[0] = PAGE_MAGIC ^ id_hash;
	w[1] = idx;
	w[2] = gen;
	w[3] = mix64(w[0] ^ mix64(w[1] ^ mix64(w[2])));
	for (size_t k = 1; k < page_size / 8 / WORDS_PER_LINE; k++)
		w[k * WORDS_PER_LINE] = fill_word(idx, gen, k);
}

/* Check that page idx holds generation gen; count and report a mismatch.
 * Returns 1 if good. */
static int check_page(size_t idx, uint32_t gen)
{
	const uint64_t *w = page_words(idx);
	int bad_word = -1;
	if (w[0] != (PAGE_MAGIC ^ id_hash))
		bad_word = 0;
	else if (w[1] != idx)
		bad_word = 1;
	else if (w[2] != gen)
		bad_word = 2;
	else if (w[3] != mix64(w[0] ^ mix64(w[1] ^ mix64(w[2]))))
		bad_word = 3;
	else
		for (size_t k = 1; k < page_size / 8 / WORDS_PER_LINE; k++)
			if (w[k * WORDS_PER_LINE] != fill_word(idx, gen, k)) {
				bad_word = (int)(k * WORDS_PER_LINE);
				break;
			}
	if (bad_word < 0)
		return 1;
	mism++;
	if (mismatch_lines++ < MAX_MISMATCH_LINES)
		say("GUEST MISMATCH id=%s page=%zu want_gen=%" PRIu32
		    " got_gen=%" PRIu64 " word=%d", boot_id, idx, gen, w[2], bad_word);
	return 0;
}

static void setup_area(void)
{
	if (!dirty_mb)
		return;
	long ps = sysconf(_SC_PAGESIZE);
	if (ps >= 4096)
		page_size = (size_t)ps;
	size_t bytes = (size_t)dirty_mb << 20;
	/* PID 1 is never chosen by the OOM killer: populating more than the
	 * free memory would end in a kernel panic, not an error line. */
	struct sysinfo si;
	if (sysinfo(&si) == 0) {
		uint64_t free_b = (uint64_t)si.freeram * si.mem_unit;
		uint64_t margin = 16u << 20;
		if (bytes + margin > free_b) {
			say("GUEST ERROR dirty_mb=%lu exceeds free memory (%" PRIu64
			    " MiB, keeping 16 MiB spare); not dirtying",
			    dirty_mb, free_b >> 20);
			return;
		}
	}
	/* MAP_POPULATE: fault everything in now, not in the middle of a tick. */
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		say("GUEST ERROR cannot allocate dirty_mb=%lu: %s", dirty_mb,
		    strerror(errno));
		return;
	}
	area = p;
	npages = bytes / page_size;
	rate_pages = ((uint64_t)dirty_rate_mb << 20) / page_size;
	/* Tag every page once (generation 1), so all of it is real, distinct
	 * data from the start and all of it is checked by a full pass. */
	for (size_t i = 0; i < npages; i++)
		write_page(i, 1);
}

/* Check every page; repair bad ones with their expected content so one
 * corruption is counted once, not again at its next rewrite. */
static void verify_all(void)
{
	uint64_t bad = 0;
	for (size_t i = 0; i < npages; i++) {
		uint32_t gen = want_gen(i, pages_rewritten);
		if (!check_page(i, gen)) {
			bad++;
			write_page(i, gen);
		}
	}
	verifies++;
	say("GUEST VERIFY id=%s n=%" PRIu64 " bad=%" PRIu64 " mism=%" PRIu64,
	    boot_id, verifies, bad, mism);
}

/* Rewrite the next n pages, verifying each one's old content first. */
static void dirty_pages(uint64_t n)
{
	while (n--) {
		size_t idx = pages_rewritten % npages;
		uint32_t gen = want_gen(idx, pages_rewritten);
		check_page(idx, gen);
		write_page(idx, gen + 1);
		if (++pages_rewritten % npages == 0)
			verify_all(); /* one full cycle done */
	}
}

/* Pages that must have been rewritten by the end of tick n.  Computed from
 * n alone (no running remainder), so odd rates average out exactly and the
 * result can be checked against pages_rewritten. */
static uint64_t pages_due(uint64_t n)
{
	return n * rate_pages * tick_ms / 1000;
}

static int ts_before(const struct timespec *a, const struct timespec *b);

/* ---- power button --------------------------------------------------- */

#define MAX_INPUTS 8
static struct pollfd inputs[MAX_INPUTS];
static int n_inputs;

/* Load the ACPI button driver, then evdev, which gives every input device
 * (the power button among them) a /dev/input/eventN node on devtmpfs. */
static void setup_power_button(void)
{
	/* In dependency order: the power button and its input events, then
	 * virtio over PCI for the disk (virtio_blk) and the balloon. */
	const char *mods[] = {
		"/modules/button.ko", "/modules/evdev.ko",
		"/modules/virtio_ring.ko", "/modules/virtio.ko",
		"/modules/virtio_pci_legacy_dev.ko", "/modules/virtio_pci_modern_dev.ko",
		"/modules/virtio_pci.ko", "/modules/virtio_blk.ko", "/modules/virtio_balloon.ko",
	};
	for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
		int fd = open(mods[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* an initramfs without modules: no button */
		if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
			say("GUEST ERROR finit_module %s: %s", mods[i], strerror(errno));
		close(fd);
	}
	/* devtmpfs makes the nodes asynchronously: give it up to a second. */
	DIR *d = NULL;
	for (int tries = 0; tries < 20 && !d; tries++) {
		if (!(d = opendir("/dev/input")))
			usleep(50000);
	}
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && n_inputs < MAX_INPUTS) {
		if (strncmp(e->d_name, "event", 5) != 0)
			continue;
		char path[300];
		snprintf(path, sizeof path, "/dev/input/%s", e->d_name);
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			inputs[n_inputs++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	closedir(d);
}

/* Power off if the power button was pressed. */
static void check_power_button(void)
{
	for (int i = 0; i < n_inputs; i++) {
		struct input_event ev;
		while (read(inputs[i].fd, &ev, sizeof ev) == (ssize_t)sizeof ev) {
			if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
				say("GUEST POWERDOWN id=%s", boot_id);
				sync();
				reboot(RB_POWER_OFF);
				say("GUEST ERROR power off: %s", strerror(errno));
			}
		}
	}
}

/* Sleep until the absolute CLOCK_MONOTONIC deadline, answering the power
 * button meanwhile. */
static void sleep_until(const struct timespec *deadline)
{
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!ts_before(&now, deadline))
			return;
		struct timespec left = { deadline->tv_sec - now.tv_sec, deadline->tv_nsec - now.tv_nsec };
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (ppoll(inputs, n_inputs, &left, NULL) > 0)
			check_power_button();
	}
}

/* ---- disk ----------------------------------------------------------- */

#define DISK_BLOCK 4096
#define DISK_MAGIC UINT64_C(0x4755455354444b42) /* "GUESTDKB" */
#define MAX_DISK_MISMATCH_LINES 10

static int disk_fd = -1;
static uint32_t *disk_gen;        /* number of the last write of each block, 0 = none */
static uint64_t *disk_buf;        /* one aligned block, for O_DIRECT */
static uint64_t disk_next, disk_written, disk_checked, disk_mism, disk_mismatch_lines;

static void fill_block(size_t idx, uint32_t gen)
{
	disk_buf[0] = DISK_MAGIC;
	disk_buf[1] = id_hash;
	disk_buf[2] = idx;
	disk_buf[3] = gen;
	for (size_t k = 4; k < DISK_BLOCK / 8; k++)
		disk_buf[k] = mix64(id_hash ^ ((uint64_t)idx << 32) ^ ((uint64_t)gen << 8) ^ k);
}

static void setup_disk(void)
{
	if (!disk_blocks)
		return;
	/* virtio_blk probes asynchronously: give /dev/vda a few seconds. */
	for (int tries = 0; tries < 100 && disk_fd < 0; tries++) {
		disk_fd = open("/dev/vda", O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
		if (disk_fd < 0)
			usleep(50000);
	}
	if (disk_fd < 0) {
		say("GUEST ERROR open /dev/vda: %s", strerror(errno));
		return;
	}
	disk_gen = calloc(disk_blocks, sizeof *disk_gen);
	if (!disk_gen || posix_memalign((void **)&disk_buf, DISK_BLOCK, DISK_BLOCK)) {
		say("GUEST ERROR no memory for %lu disk blocks", disk_blocks);
		close(disk_fd);
		disk_fd = -1;
	}
}

/* Write the next disk_rate blocks, round robin. */
static void disk_tick(void)
{
	if (disk_fd < 0)
		return;
	for (unsigned long r = 0; r < disk_rate; r++) {
		size_t idx = disk_next++ % disk_blocks;
		fill_block(idx, disk_gen[idx] + 1);
		if (pwrite(disk_fd, disk_buf, DISK_BLOCK, (off_t)idx * DISK_BLOCK) != DISK_BLOCK) {
			say("GUEST ERROR disk write block %zu: %s", idx, strerror(errno));
			return;
		}
		disk_gen[idx]++; /* only a write that completed is expected back */
		disk_written++;
	}
}

/* Read every written block back and compare it with its last write. */
static void disk_check(uint64_t n)
{
	if (disk_fd < 0)
		return;
	static uint64_t want[DISK_BLOCK / 8];
	for (size_t idx = 0; idx < disk_blocks; idx++) {
		if (!disk_gen[idx])
			continue;
		fill_block(idx, disk_gen[idx]);
		memcpy(want, disk_buf, DISK_BLOCK);
		if (pread(disk_fd, disk_buf, DISK_BLOCK, (off_t)idx * DISK_BLOCK) != DISK_BLOCK) {
			say("GUEST ERROR disk read block %zu: %s", idx, strerror(errno));
			return;
		}
		disk_checked++;
		if (memcmp(want, disk_buf, DISK_BLOCK) != 0) {
			disk_mism++;
			if (disk_mismatch_lines++ < MAX_DISK_MISMATCH_LINES)
				say("GUEST DISK MISMATCH id=%s block=%zu want_gen=%" PRIu32 " got_magic=%016" PRIx64 " got_gen=%" PRIu64,
				    boot_id, idx, disk_gen[idx], disk_buf[0], disk_buf[3]);
		}
	}
	say("GUEST DISK id=%s n=%" PRIu64 " written=%" PRIu64 " checked=%" PRIu64 " dmism=%" PRIu64,
	    boot_id, n, disk_written, disk_checked, disk_mism);
}

/* ---- main loop ------------------------------------------------------ */

static void ts_add_ms(struct timespec *t, unsigned long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int main(void)
{
	setup_console();
	parse_cmdline();
	if (!boot_id[0])
		make_boot_id();
	/* FNV-1a of the id: the per-boot value stamped into every page. */
	id_hash = UINT64_C(0xcbf29ce484222325);
	for (const char *p = boot_id; *p; p++)
		id_hash = (id_hash ^ (unsigned char)*p) * UINT64_C(0x100000001b3);

	say("GUEST BOOT id=%s", boot_id);
	if (cmdline_errors[0])
		say("GUEST ERROR options:%s", cmdline_errors);
	say("GUEST CONFIG id=%s tick_ms=%lu dirty_mb=%lu dirty_rate_mb=%lu dirty_sparse=%lu",
	    boot_id, tick_ms, dirty_mb, dirty_rate_mb, dirty_sparse);
	setup_area();
	setup_power_button();
	setup_disk();

	/* With no rewriting, still check the idle area about every 5 s. */
	uint64_t idle_verify_ticks = 5000 / tick_ms ? 5000 / tick_ms : 1;

	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (uint64_t n = 1;; n++) {
		/* Absolute deadlines: ticks don't drift by the time work takes. */
		ts_add_ms(&next, tick_ms);
		if (rate_pages) {
			/* The tick counter n and pages_rewritten must agree: if
			 * not, writes to memory were lost (or came from nowhere).
			 * Count it, and go on from where n says we are. */
			uint64_t want = pages_due(n - 1);
			if (pages_rewritten != want) {
				mism++;
				if (mismatch_lines++ < MAX_MISMATCH_LINES)
					say("GUEST MISMATCH id=%s counter n=%" PRIu64
					    " pages=%" PRIu64 " want_pages=%" PRIu64,
					    boot_id, n - 1, pages_rewritten, want);
				pages_rewritten = want;
			}
			dirty_pages(pages_due(n) - pages_rewritten);
		} else if (area && n % idle_verify_ticks == 0) {
			verify_all();
		}
		disk_tick();
		if (n % idle_verify_ticks == 0)
			disk_check(n);
		sleep_until(&next);
		/* After a long stop (paused VM, slow host) start afresh rather
		 * than fire a burst of late ticks. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		struct timespec late = next;
		ts_add_ms(&late, tick_ms);
		if (ts_before(&late, &now))
			next = now;
		say("GUEST TICK id=%s n=%" PRIu64 " mism=%" PRIu64 " pages=%" PRIu64,
		    boot_id, n, mism, pages_rewritten);
	}
	/* not reached: PID 1 must not return */
}
