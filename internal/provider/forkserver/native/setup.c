/*
 * Warden fork server: the native set-up of a sandbox (ADR 0020).
 *
 * The fork server (zygote.py) loads this as a shared object and hands its
 * loop to warden_serve, which receives the host's requests and clones a
 * child for each, in a new user and pid namespace. A request is a
 * program the host made (setup_program_linux.go), a list of operations, each a
 * name and its arguments, every token ending in a NUL byte, followed by
 * the agent's part of the request (JSON, read in the child only), with
 * the sandbox's descriptors passed beside it; "%i" in the program is the
 * i-th of them. The child runs the program: joining the cgroups, the
 * other namespaces, the new root, pivot_root, capabilities, Landlock,
 * rlimits and the seccomp filter, the very steps zygote.py takes in
 * Python (its Zygote.child, init and confine), in the same order. It
 * returns 0 to Python, confined, to become the agent; any failure ends it
 * at once, with a line on its stderr and exit code 120 (124 for a
 * network that never came).
 *
 * Why native: on a machine where a page fault costs 10-15 us, the
 * interpreter touching its objects between the clone and the agent cost
 * about 200 copy-on-write faults and 6-7 ms of CPU per sandbox; this
 * costs about 12 faults and 1-2 ms. And why the loop too (ADR 0021): each
 * page the server writes between two clones is copied again, a fault
 * each; the interpreter, reading a request and building the program,
 * wrote some 150. This loop writes a few: its stack and the request's.
 *
 * Only the C library and the kernel's system calls: no allocation, no
 * global state but the seccomp program (set once by warden_init), the
 * request being served and the Landlock ruleset of the child being set
 * up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#define W_CLONE_NEWUSER 0x10000000
#define W_CLONE_NEWPID 0x20000000
#define W_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define W_PR_CAP_AMBIENT 47
#define W_PR_CAP_AMBIENT_CLEAR_ALL 4
#define W_SECCOMP_MODE_FILTER 2
#define W_MADV_POPULATE_WRITE 23

struct w_sock_filter {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct w_sock_fprog {
	unsigned short len;
	struct w_sock_filter *filter;
};
struct w_cap_header {
	uint32_t version;
	int pid;
};
struct w_cap_data {
	uint32_t effective, permitted, inheritable;
};
struct w_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static struct w_sock_filter seccomp_prog[4096];
static unsigned short seccomp_len;

/* The pages a one-shot run writes (warden_hot): address, length. */
#define W_MAX_HOT 4096
static unsigned long hot[W_MAX_HOT][2];
static int nhot;

/* The largest request, and the most descriptors one passes. */
#define W_MAX_MSG (1 << 16)
#define W_MAX_FDS 64

/* The request being served: its bytes, and the descriptors passed with
 * it that "%i" names in its program. */
static char msg_buf[W_MAX_MSG];
static long msg_high; /* the longest request read so far */
static int req_fds[W_MAX_FDS];
static int req_nfds;

/* What a child of warden_serve returns to Python with. */
struct warden_req {
	const char *data; /* the agent's part of the request (JSON) */
	long len;
	int nfds;
	int fds[W_MAX_FDS]; /* every descriptor passed, in order */
};

/* warden_init keeps the seccomp program (n bytes of struct sock_filter)
 * every child loads last. */
int warden_init(const char *prog, int n)
{
	if (n <= 0 || n % 8 != 0 || (size_t)n > sizeof seccomp_prog)
		return -EINVAL;
	memcpy(seccomp_prog, prog, n);
	seccomp_len = n / 8;
	return 0;
}

/* warden_hot keeps the ranges of pages (n pairs of address and length)
 * that the "hot" operation makes a child's own. */
int warden_hot(const unsigned long *ranges, int n)
{
	if (n < 0 || n > W_MAX_HOT)
		return -EINVAL;
	memcpy(hot, ranges, n * sizeof hot[0]);
	nhot = n;
	return 0;
}

/* say_to writes "warden fork server: abc" as a line on fd. */
static void say_to(int fd, const char *a, const char *b, const char *c)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "warden fork server: %s%s%s\n", a, b, c);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	if (n > 0 && write(fd, buf, n) < 0) {
		/* nothing to do */
	}
}

static void say(const char *a, const char *b, const char *c) { say_to(2, a, b, c); }

static void die(const char *op, const char *arg)
{
	char what[512];
	snprintf(what, sizeof what, "%s %s: ", op, arg);
	say(what, strerror(errno), "");
	_exit(120);
}

static void trace(const char *what)
{
	struct timespec mono, cpu;
	struct rusage ru;
	char buf[256];
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	getrusage(RUSAGE_SELF, &ru);
	int n = snprintf(buf, sizeof buf, "T %s %ld.%06ld cpu=%.2fms faults=%ld\n", what, (long)mono.tv_sec,
			 mono.tv_nsec / 1000, cpu.tv_sec * 1e3 + cpu.tv_nsec / 1e6, ru.ru_minflt);
	if (n > 0 && write(2, buf, n) < 0) {
		/* nothing to do */
	}
}

/* The program's tokens. */
struct prog {
	const char *p, *end;
};

static const char *next(struct prog *pr)
{
	if (pr->p >= pr->end) {
		say("the set-up program ended too early", "", "");
		_exit(120);
	}
	const char *t = pr->p;
	pr->p += strlen(t) + 1;
	return t;
}

static long long tnum(const char *t)
{
	char *e;
	errno = 0;
	long long v = strtoll(t, &e, 10);
	if (*t == 0 || *e != 0 || errno) {
		say("a bad number in the set-up program: ", t, "");
		_exit(120);
	}
	return v;
}

static long long num(struct prog *pr) { return tnum(next(pr)); }

/* fdarg is a descriptor: "%i", the i-th passed with the request, or a
 * number. */
static int fdarg(struct prog *pr)
{
	const char *t = next(pr);
	if (*t != '%')
		return tnum(t);
	long long i = tnum(t + 1);
	if (t[1] < '0' || t[1] > '9' || i >= req_nfds) {
		say("a descriptor the request did not pass: ", t, "");
		_exit(120);
	}
	return req_fds[i];
}

static unsigned long long unum(struct prog *pr)
{
	const char *t = next(pr);
	char *e;
	errno = 0;
	unsigned long long v = strtoull(t, &e, 10);
	if (*t < '0' || *t > '9' || *e != 0 || errno) {
		say("a bad number in the set-up program: ", t, "");
		_exit(120);
	}
	return v;
}

static const char *opt(const char *s) { return *s ? s : NULL; }

static void write_file(const char *path, const char *data, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("writing", path);
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n)
		die("writing", path);
	close(fd);
}

static int is_dir(const char *path)
{
	int e = errno;
	struct stat st;
	int ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	errno = e;
	return ok;
}

/* mkdirs makes path and its parents, as os.makedirs(exist_ok=True). */
static void mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof buf)
		die("mkdir", path);
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0755) < 0 && !is_dir(buf))
			die("mkdir", buf);
		*s = '/';
	}
	if (mkdir(buf, 0755) < 0 && !is_dir(buf))
		die("mkdir", buf);
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("loopback", "up");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("loopback", "up");
	close(s);
}

static void drop_caps(void)
{
	for (unsigned long cap = 0; prctl(PR_CAPBSET_DROP, cap, 0UL, 0UL, 0UL) == 0; cap++)
		;
	if (prctl(W_PR_CAP_AMBIENT, (unsigned long)W_PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) < 0 && errno != EINVAL)
		die("clearing the ambient capabilities", "");
	struct w_cap_header h = {0x20080522, 0};
	struct w_cap_data d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset", "");
}

/* The steps a child must have taken before it returns to Python. */
#define W_DID_CAPS 1
#define W_DID_NONEWPRIVS 2
#define W_DID_SECCOMP 4
#define W_CONFINED (W_DID_CAPS | W_DID_NONEWPRIVS | W_DID_SECCOMP)

static void run(struct prog *pr, int *did)
{
	int ruleset = -1;
	while (pr->p < pr->end) {
		const char *op = next(pr);
		if (!strcmp(op, "keep")) {
			/* Close every descriptor but n given ones. */
			long long n = num(pr);
			int keep[W_MAX_FDS + 3];
			if (n < 0 || n > (long long)(sizeof keep / sizeof keep[0])) {
				say("keep: too many descriptors", "", "");
				_exit(120);
			}
			for (long long i = 0; i < n; i++) {
				int fd = fdarg(pr), j = i;
				if (fd < 0) {
					say("keep: a negative descriptor", "", "");
					_exit(120);
				}
				for (; j > 0 && keep[j - 1] > fd; j--)
					keep[j] = keep[j - 1];
				keep[j] = fd;
			}
			unsigned int lo = 0;
			for (long long i = 0; i < n; i++) {
				unsigned int fd = keep[i];
				if (fd > lo && syscall(SYS_close_range, lo, fd - 1, 0) < 0)
					die("close_range", "");
				lo = fd + 1;
			}
			if (syscall(SYS_close_range, lo, ~0U, 0) < 0)
				die("close_range", "");
		} else if (!strcmp(op, "dup2")) {
			int a = fdarg(pr), b = fdarg(pr);
			if (dup2(a, b) < 0)
				die("dup2", "");
		} else if (!strcmp(op, "sigdfl")) {
			signal(num(pr), SIG_DFL);
		} else if (!strcmp(op, "cgroup")) {
			int fd = fdarg(pr);
			if (write(fd, "0", 1) != 1)
				die("joining a cgroup", "");
			close(fd);
		} else if (!strcmp(op, "file")) {
			const char *path = next(pr), *data = next(pr);
			write_file(path, data, O_WRONLY);
		} else if (!strcmp(op, "newfile")) {
			const char *path = next(pr), *data = next(pr);
			write_file(path, data, O_WRONLY | O_CREAT | O_EXCL);
		} else if (!strcmp(op, "unshare")) {
			if (unshare(num(pr)) < 0)
				die("unshare", "");
		} else if (!strcmp(op, "hostname")) {
			const char *name = next(pr);
			if (sethostname(name, strlen(name)) < 0)
				die("sethostname", name);
		} else if (!strcmp(op, "loopback")) {
			loopback_up();
		} else if (!strcmp(op, "byte")) {
			int fd = fdarg(pr);
			const char *b = next(pr);
			if (write(fd, b, 1) != 1)
				die("reporting to the host", "");
		} else if (!strcmp(op, "setsid")) {
			if (setsid() < 0)
				die("setsid", "");
		} else if (!strcmp(op, "mount")) {
			const char *src = next(pr), *dst = next(pr), *fs = next(pr);
			unsigned long flags = num(pr);
			const char *data = next(pr);
			if (mount(opt(src), dst, opt(fs), flags, opt(data)) < 0)
				die("mount", dst);
		} else if (!strcmp(op, "symlink")) {
			const char *target = next(pr), *link = next(pr);
			if (symlink(target, link) < 0)
				die("symlink", link);
		} else if (!strcmp(op, "mkdirs")) {
			mkdirs(next(pr));
		} else if (!strcmp(op, "attach")) {
			int fd = fdarg(pr);
			const char *target = next(pr);
			if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, W_MOVE_MOUNT_F_EMPTY_PATH) < 0)
				die("attaching", target);
			close(fd);
		} else if (!strcmp(op, "unlink")) {
			const char *path = next(pr);
			if (unlink(path) < 0)
				die("unlink", path);
		} else if (!strcmp(op, "chdir")) {
			const char *path = next(pr);
			if (chdir(path) < 0)
				die("chdir", path);
		} else if (!strcmp(op, "trychdir")) {
			if (chdir(next(pr)) < 0) {
				/* the workspace may not exist: the agent says so */
			}
		} else if (!strcmp(op, "pivot")) {
			if (syscall(SYS_pivot_root, ".", ".") < 0)
				die("pivot_root", "");
			if (umount2(".", MNT_DETACH) < 0)
				die("detaching the old root", "");
		} else if (!strcmp(op, "caps")) {
			drop_caps();
			*did |= W_DID_CAPS;
		} else if (!strcmp(op, "nonewprivs")) {
			if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) < 0)
				die("no_new_privs", "");
			*did |= W_DID_NONEWPRIVS;
		} else if (!strcmp(op, "landlock")) {
			uint64_t handled = unum(pr), scoped = unum(pr);
			uint64_t attr[3] = {handled, 0, scoped};
			long long size = num(pr);
			if (size <= 0 || size > (long long)sizeof attr)
				die("landlock_create_ruleset", "size");
			ruleset = syscall(SYS_landlock_create_ruleset, attr, (size_t)size, 0UL);
			if (ruleset < 0)
				die("landlock_create_ruleset", "");
		} else if (!strcmp(op, "rule")) {
			const char *path = next(pr);
			uint64_t access = unum(pr), file_mask = unum(pr);
			int fd = open(path, O_PATH | O_CLOEXEC);
			if (fd < 0) {
				if (errno == ENOENT)
					continue;
				die("landlock_add_rule", path);
			}
			struct stat st;
			if (fstat(fd, &st) < 0)
				die("landlock_add_rule", path);
			if (!S_ISDIR(st.st_mode))
				access &= file_mask;
			struct w_path_beneath pb = {access, fd};
			if (syscall(SYS_landlock_add_rule, (long)ruleset, 1L, &pb, 0UL) < 0)
				die("landlock_add_rule", path);
			close(fd);
		} else if (!strcmp(op, "restrict")) {
			if (syscall(SYS_landlock_restrict_self, (long)ruleset, 0UL) < 0)
				die("landlock_restrict_self", "");
			close(ruleset);
			ruleset = -1;
		} else if (!strcmp(op, "rlimit")) {
			int res = num(pr);
			struct rlimit rl;
			rl.rlim_cur = rl.rlim_max = unum(pr);
			if (setrlimit(res, &rl) < 0)
				die("setrlimit", "");
		} else if (!strcmp(op, "seccomp")) {
			struct w_sock_fprog fp = {seccomp_len, seccomp_prog};
			if (seccomp_len == 0 || prctl(PR_SET_SECCOMP, (unsigned long)W_SECCOMP_MODE_FILTER, &fp, 0UL, 0UL) < 0)
				die("seccomp", "");
			*did |= W_DID_SECCOMP;
		} else if (!strcmp(op, "await")) {
			/* Wait for the host's byte on fd; anything else ends the child. */
			int fd = fdarg(pr);
			const char *want = next(pr);
			int code = num(pr);
			char c;
			if (read(fd, &c, 1) != 1 || c != want[0])
				_exit(code);
		} else if (!strcmp(op, "hot")) {
			/* The pages the code will write, copied now: a page made
			 * present by madvise costs a third of a fault here. Only
			 * an optimisation: any failure (an older kernel) ends it. */
			for (int i = 0; i < nhot; i++)
				if (madvise((void *)hot[i][0], hot[i][1], W_MADV_POPULATE_WRITE) < 0 && errno != EFAULT)
					break;
		} else if (!strcmp(op, "trace")) {
			trace(next(pr));
		} else {
			say("unknown operation in the set-up program: ", op, "");
			_exit(120);
		}
	}
}

/* serve_one clones the child for the request in msg_buf (n bytes; high,
 * the longest before it) and req_fds, and returns in it, confined, 0 with
 * *out filled; in the server, the child's pid, or -1 with why set when
 * there is none. */
static long serve_one(long n, long high, int flags, struct warden_req *out, const char **why)
{
	uint32_t plen = 0;
	if (flags & MSG_TRUNC)
		*why = "a request larger than 64 KiB";
	else if (flags & MSG_CTRUNC)
		*why = "a request with too many descriptors";
	else if (req_nfds < 2)
		*why = "a request without its socket and stderr";
	else if (n < 4 || (memcpy(&plen, msg_buf, 4), plen > (uint32_t)n - 4) || plen == 0 || msg_buf[4 + plen - 1] != 0)
		*why = "a malformed request";
	if (*why)
		return -1;
	long pid = syscall(SYS_clone, (unsigned long)(W_CLONE_NEWUSER | W_CLONE_NEWPID | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
	if (pid < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (pid > 0)
		return pid;
	/* What is left of longer requests before this one (other sandboxes'
	 * paths) is not this child's to see. */
	if (high > n)
		memset(msg_buf + n, 0, high - n);
	struct prog pr = {msg_buf + 4, msg_buf + 4 + plen};
	int did = 0;
	run(&pr, &did);
	if ((did & W_CONFINED) != W_CONFINED) {
		/* Never back to Python unconfined, whatever the program said. */
		say("the set-up program did not confine the child (capabilities, no_new_privs, seccomp)", "", "");
		_exit(120);
	}
	out->data = msg_buf + 4 + plen;
	out->len = n - 4 - plen;
	out->nfds = req_nfds;
	memcpy(out->fds, req_fds, sizeof req_fds);
	return 0;
}

/* warden_serve is the fork server's loop: for each request on ctl (a
 * SOCK_SEQPACKET socket), a child, which returns 0 here, set up and
 * confined, with *out its request. The server returns 1 when the host
 * closes ctl, -errno when reading from it fails; a request it cannot
 * serve (out of processes, malformed) is said on the request's stderr,
 * and its descriptors closed: the host sees its socket close. */
long warden_serve(int ctl, struct warden_req *out)
{
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(W_MAX_FDS * sizeof(int))];
		} cm;
		struct iovec iov = {msg_buf, sizeof msg_buf};
		struct msghdr mh;
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof cm.buf;
		long n = recvmsg(ctl, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		req_nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				if (req_nfds < W_MAX_FDS)
					req_fds[req_nfds++] = fd;
				else
					close(fd);
			}
		}
		if (n == 0 && req_nfds == 0)
			return 1;
		long high = msg_high;
		if (n > msg_high)
			msg_high = n;
		const char *why = NULL;
		if (serve_one(n, high, mh.msg_flags, out, &why) == 0)
			return 0;
		if (why && req_nfds >= 2)
			say_to(req_fds[1], why, "", "");
		for (int i = 0; i < req_nfds; i++)
			close(req_fds[i]);
	}
}
