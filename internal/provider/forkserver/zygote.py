# Warden fork server ("zygote"). Runs inside a bubblewrap sandbox of its
# own (user, pid, mount, ipc, uts, net and cgroup namespaces; the image's
# system directories read-only; no workspace of anyone's) as
#
#     python3 -c <a loader that runs this source, read from fd 7> zygote
#
# (a short command line: it is every sandbox's /proc/1/cmdline), with fd 3
# a SOCK_SEQPACKET socket to the host, fd 4 a pipe holding its
# configuration (JSON: the seccomp program, the layout of a sandbox's
# root) and fd 5 one holding the agent's source. It imports and compiles
# the agent once, then, for each message on fd 3 (the native set-up's
# program, its length first, then JSON; descriptors passed with
# SCM_RIGHTS), forks a child that becomes a fresh sandbox:
#
#   C1  (the zygote's child) joins the sandbox's cgroups by writing 0 to
#       their cgroup.procs files, which the host opened and passed (the
#       kernel checks the opener's credentials), unshares a user, mount,
#       pid, net, ipc, uts and cgroup namespace, maps its uid and gid onto
#       themselves, forks C2 and exits.
#   C2  (pid 1 of the new pid namespace) tells the host its pid (one byte
#       on the agent's socket: the host reads SCM_CREDENTIALS, which the
#       kernel translates into the host's pid namespace), builds the
#       sandbox's root on a fresh tmpfs (the image's directories bound
#       read-only from the zygote's view, a new /proc, /dev read-only with
#       a private /dev/shm and devpts, a private /tmp, the workspace and
#       mounts attached from detached mount trees the host made with
#       open_tree), pivots into it, drops every capability, sets
#       no_new_privs, the Landlock domain, the rlimits and the seccomp
#       filter, and runs the agent's main(), already imported (no
#       interpreter starts, nothing is compiled): its stdin and stdout are
#       the host's socket, its stderr the host's pipe. The agent is the
#       namespace's init: the reaper of orphans, immune to the code's
#       signals, and the end of every process of the sandbox when it exits.
#
# With the native set-up (fd 9: a memfd holding setup.c built by the host;
# ADR 0020 and 0021), the loop itself is native (warden_serve): for each
# request it clones C2 directly (the user and pid namespaces with the
# clone) and takes C1's and C2's steps above in C, in the same order, from
# a program of operations the host made (setup_program_linux.go) and sent
# before the request's JSON; the child comes back to Python confined, to
# run the agent. The server runs no Python between two clones. Without
# it (no compiler on the host, DoubleFork, PythonSetup), the steps run
# here in Python and the program is skipped.
#
# The zygote holds nothing secret: it is forked into every sandbox and its
# memory (and layout: one ASLR draw for all children) is visible to each.
# It must stay single-threaded: fork() copies only the calling thread.

# Only what the agent imports anyway, C modules and ctypes: every page of
# the server is shared by its children until one writes to it, and json
# (re), socket (enum, selectors) and signal (enum) would only add to them.
import _signal as signal
import _socket
import ctypes
import fcntl
import gc
import os
import resource
import struct
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 4

MADV_POPULATE_READ = 22
errno_EINVAL = 22
PAGE = os.sysconf("SC_PAGE_SIZE")

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


TRACE = [False]


def trace(what):
    """With tracing on (a test's request), the time of each step on stderr,
    on CLOCK_MONOTONIC, the clock the host's trace uses too."""
    if TRACE[0]:
        try:
            os.write(2, ("T %s %.6f cpu=%.2fms faults=%d\n" % (what, time.clock_gettime(time.CLOCK_MONOTONIC),
                                                                time.process_time() * 1000,
                                                                resource.getrusage(resource.RUSAGE_SELF).ru_minflt)).encode())
        except OSError:
            pass


def exit_with(fn):
    """Ends a child of the server with fn's code: what fn returns, a
    SystemExit's, or 120 with the error on stderr."""
    code = 120
    try:
        code = fn() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:
        try:
            os.write(2, ("warden fork server: %s\n" % (e,)).encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def check(r, what):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return r


def b(s):
    return s.encode() if isinstance(s, str) else s


def write_file(path, data):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, "writing %s: %s" % (path, e.strerror))


def mount(src, dst, fstype, flags, data=None):
    trace("mount " + str(dst))
    check(libc.mount(b(src) if src else None, b(dst), b(fstype) if fstype else None, flags,
                     b(data) if data else None), "mount %s" % dst)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class WardenReq(ctypes.Structure):
    """setup.c's struct warden_req."""
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_long), ("nfds", ctypes.c_int), ("fds", ctypes.c_int * 64)]


class Zygote(object):
    def __init__(self, cfg, agent):
        self.cfg = cfg
        self.sys = cfg["syscalls"]
        self.seccomp = bytes.fromhex(cfg["seccomp"])
        self.root = cfg["root"]  # mount point of a sandbox's new root
        self.agent = agent
        self.base_path = [p for p in sys.path if p != ""]
        self.uid, self.gid = os.getuid(), os.getgid()
        self.double_fork = bool(cfg.get("double_fork")) or not check_no_fork_hooks()
        # bwrap leaves the server's mounts private; should any be shared,
        # each child makes its copies private before it mounts anything.
        with open("/proc/self/mountinfo") as f:
            self.shared = any(" shared:" in line for line in f)
        # The native set-up, when the host passed it (fd 9) and it loads.
        self.native = None
        self.native_err = ""
        if not self.double_fork:
            self.native, self.native_err = load_native(self.seccomp)
        else:
            self.native_err = "double fork"
            if native_passed():
                os.close(9)
        # What a set-up program cannot look at in the child, looked at
        # here (the same kernel, the same image) and told the host.
        self.proc_ro = [sub for sub in ("sys", "sysrq-trigger", "irq", "bus") if os.path.exists("/proc/" + sub)]
        self.etc_files = [p for p in ("/etc/hosts", "/etc/resolv.conf") if os.path.exists(p)]
        # The seccomp program, ready to load.
        self.seccomp_buf = ctypes.create_string_buffer(self.seccomp, len(self.seccomp))
        self.fprog = SockFprog(len(self.seccomp) // 8, ctypes.cast(self.seccomp_buf, ctypes.c_void_p))

    # -- the zygote's loop

    def serve(self, ctl):
        # A one-shot run's process writes through the interpreter's own
        # streams, on the pipes its fds 1 and 2 become: made here, once,
        # as a worker's are (UTF-8, line-buffered, nothing unprintable).
        for f in (sys.stdout, sys.stderr):
            try:
                f.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
            except Exception:
                pass
        gc.collect()
        gc.freeze()  # what is alive now stays put: no copies from the collector
        # Children are reaped by the kernel as they end (SIGCHLD ignored):
        # no handler runs in the server, and no page of it is written for
        # a child's end. A sandbox's init is the server's child (clone) or
        # grandchild (double fork, reaped by bwrap's init); the host reads
        # how it ended from its pidfd, which keeps the status either way.
        hot = 0
        if self.native is not None:
            map_text_at_fork()
            hot = self.learn_hot(self.cfg.get("hot_sample") or SAMPLE)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        if self.native is not None:
            # What the host's set-up programs depend on, as seen here.
            ctl.send(("ready native uid=%d gid=%d shared=%d proc_ro=%s etc=%s hot=%d" % (
                self.uid, self.gid, self.shared, ",".join(self.proc_ro), ",".join(self.etc_files), hot)).encode())
            return self.serve_native(ctl)
        ctl.send(("ready python " + self.native_err).encode()[:200])
        # One buffer for every request: a child clears what is left of
        # longer ones before it (other sandboxes' paths) in its copy.
        buf = bytearray(1 << 16)
        high = 0
        while True:
            try:
                size, anc, _, _ = ctl.recvmsg_into([buf], _socket.CMSG_SPACE(64 * 4))
            except InterruptedError:
                continue
            if not size:
                return 0
            before, high = high, max(high, size)
            fds = []
            for level, typ, data in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    n = len(data) - len(data) % 4
                    fds.extend(struct.unpack("%di" % (n // 4), data[:n]))
            try:
                pid = self.fork()
            except Exception as e:
                # Out of processes or memory: this sandbox fails (the host
                # sees its socket close), the server goes on.
                try:
                    os.write(fds[1] if len(fds) > 1 else 2, ("warden fork server: %s\n" % (e,)).encode())
                except OSError:
                    pass
                pid = -1
            if pid == 0:
                def child():
                    ctl.close()
                    buf[size:before] = bytes(max(before - size, 0))
                    # The request is parsed here, in the child: each page
                    # the server writes between two forks is copied again
                    # (a page fault each, dear on a virtual machine). The
                    # set-up program before it is the native set-up's.
                    n = struct.unpack_from("<I", buf)[0] + 4
                    return self.child(self.agent["json_loads"](bytes(buf[n:size]).decode()), fds)
                exit_with(child)
            for fd in fds:
                os.close(fd)

    def serve_native(self, ctl):
        """The loop of the native set-up (setup.c's warden_serve): the
        server runs no Python between two clones, so that it writes almost
        none of the pages its children share with it."""
        out = WardenReq()
        r = self.native.warden_serve(ctl.fileno(), ctypes.byref(out))
        if r > 0:
            return 0
        if r < 0:
            raise OSError(-r, "reading requests: %s" % os.strerror(-r))
        # The child, set up and confined.
        def child():
            ctl.detach()  # the set-up closed it
            # As the set-up left it, in the interpreter's view too.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            req = self.agent["json_loads"](ctypes.string_at(out.data, out.len).decode())
            TRACE[0] = bool(req.get("trace"))
            return self.agent_main(req, list(out.fds[:out.nfds]))
        exit_with(child)

    def learn_hot(self, sample):
        """Learns which pages a one-shot Python run writes, for the native
        set-up's "hot" step, which copies them into each one-shot sandbox
        at once (MADV_POPULATE_WRITE: a third of what a fault costs on a
        paravirtualised machine, where each first write to a page shared
        with the server traps). A child of the server (T) runs a sample
        program through the one-shot path and stops before it exits; a
        second (S), forked before it so that its reading writes none of
        T's pages, lists the pages T has of its own (present, anonymous,
        mapped once: /proc/T/pagemap) in the server's writable mappings.
        Returns the number of pages; 0, and the server serves as before,
        when anything fails."""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # to wait for T and S
        fds, pids, socks = [], [], []
        try:
            go_r, go_w = os.pipe()
            res_r, res_w = os.pipe()
            out_r, out_w = os.pipe()
            fds.extend((go_r, go_w, res_r, res_w, out_r, out_w))
            host, sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            socks.extend((host, sock))
            req = self.agent["json_dumps"]({"op": "python", "code": sample, "timeout": 30, "env": {}, "limit": 1 << 20}).encode()
            host.sendall(struct.pack(">cI", b"q", len(req)) + req)
            pid = os.fork()
            if pid == 0:
                def scan():
                    t = int(os.read(go_r, 32) or b"0")
                    data = hot_ranges(t) if t > 0 else b""
                    while data:
                        data = data[os.write(res_w, data):]
                    return 0
                exit_with(scan)
            pids.append(pid)
            os.close(res_w)
            fds.remove(res_w)
            pid = os.fork()
            if pid == 0:
                exit_ = os._exit

                def stop(code):
                    os.kill(os.getpid(), signal.SIGSTOP)
                    exit_(code)

                def train():
                    os._exit = stop
                    signal.alarm(10)  # a run that hangs: learnt from where it is, or not at all
                    env = ["%s=%s" % kv for kv in os.environ.items()]
                    return self.agent_main({"env": env, "workspace": "/tmp", "oneshot": True},
                                           [sock.detach(), out_w, out_w, out_w])
                try:
                    exit_with(train)
                finally:
                    stop(1)
            pids.append(pid)
            _, st = os.waitpid(pid, os.WUNTRACED)
            if not os.WIFSTOPPED(st):
                pids.remove(pid)  # reaped
                return 0
            os.write(go_w, b"%d" % pid)
            ranges = read_all(res_r)
            fds.remove(res_r)
            n = min(len(ranges) // 16, 4096)
            if n == 0:
                return 0
            ranges = ranges[:16 * n]
            buf = ctypes.create_string_buffer(ranges, len(ranges))
            if self.native.warden_hot(buf, n) != 0:
                return 0
            return sum(struct.unpack("=%dQ" % (2 * n), ranges)[1::2]) // PAGE
        except Exception:
            return 0
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            for f in socks:
                f.close()

    def fork(self):
        if self.double_fork:
            return os.fork()
        # clone(2) itself, with a new user and pid namespace: the child is
        # the namespace's init at once, one fork fewer than fork + unshare
        # + fork. It skips the interpreter's after-fork hooks, which a
        # single-threaded server holding no lock needs not (no module of it
        # registers any: see check_no_fork_hooks).
        return check(libc.syscall(self.sys["clone"], CLONE_NEWUSER | CLONE_NEWPID | signal.SIGCHLD, 0, 0, 0, 0), "clone")

    # -- C1

    def child(self, req, fds):
        # fds: agent socket, stderr pipe, the cgroups' cgroup.procs files,
        # workspace tree, mount trees..., the OOM counter's tree (if any).
        sock, errw = fds[0], fds[1]
        os.dup2(errw, 2)
        TRACE[0] = bool(req.get("trace"))
        trace("c1")
        lo = 0  # close_range(2) around what is kept: a listing costs more
        for fd in sorted(set(fds) | {2}) + [1 << 16]:
            os.closerange(lo, fd)
            lo = fd + 1
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # The sandbox's cgroups, joined before anything else: the host
        # opened each group's cgroup.procs (as root: the kernel checks the
        # opener's credentials) and passed it; writing 0 moves the writer.
        ncg = int(req.get("cgroups", 0))
        for fd in fds[2:2 + ncg]:
            os.write(fd, b"0")
            os.close(fd)
        del fds[2:2 + ncg]
        trace("c1-go")
        uid, gid = self.uid, self.gid  # in the child, until mapped, the overflow ids
        if self.double_fork:
            trace("unshare")
            check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                               CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP), "unshare")
            trace("unshared")
            self.map_ids(uid, gid)
            pid = os.fork()  # the first child in the new pid namespace is its init
            if pid != 0:
                return 0
        else:
            # Already in its own user and pid namespace (see serve); the
            # cgroup namespace only now, with the cgroups joined.
            self.map_ids(uid, gid)
            check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP), "unshare")
        trace("unshared")
        return self.init(req, fds)

    def map_ids(self, uid, gid):
        write_file("/proc/self/setgroups", "deny")
        write_file("/proc/self/uid_map", "%d %d 1" % (uid, uid))
        write_file("/proc/self/gid_map", "%d %d 1" % (gid, gid))
        trace("mapped")

    # -- C2: pid 1

    def init(self, req, fds):
        sock = fds[0]
        trace("c2")
        name = req.get("hostname", "sandbox").encode()
        check(libc.sethostname(name, len(name)), "sethostname")
        # Before the host learns our pid: with networking, slirp4netns
        # configures tap0 then, and both at once made bwrap's loopback
        # set-up fail now and then.
        loopback_up()
        os.write(sock, b"2")
        os.setsid()
        # No user namespace below this one, whatever the seccomp filter
        # lets through (bwrap's --disable-userns does the same): the limit
        # is the sandbox's user namespace's own, set while this process
        # still has CAP_SYS_RESOURCE in it.
        write_file("/proc/sys/user/max_user_namespaces", "0")
        if self.shared:  # nothing we mount may propagate back to the server
            mount(None, "/", None, MS_REC | MS_PRIVATE)
        r = self.root
        mount("tmpfs", r, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for link, target in self.cfg["symlinks"]:
            os.symlink(target, r + link)
        for d in self.cfg["dirs"]:
            os.makedirs(r + d, exist_ok=True)
            mount(d, r + d, None, MS_BIND | MS_REC)  # read-only in the zygote: stays so
        for d in ("/proc", "/dev", "/tmp"):
            os.makedirs(r + d, exist_ok=True)
        mount("proc", r + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # Read-only where bwrap makes them so: the kernel's knobs.
        for sub in ("sys", "sysrq-trigger", "irq", "bus"):
            d = r + "/proc/" + sub
            if os.path.exists(d):
                mount(d, d, None, MS_BIND | MS_REC)
                mount(None, d, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        mount("/dev", r + "/dev", None, MS_BIND | MS_REC)  # read-only in the zygote
        tmp = "size=%d" % int(req["tmp_size"])
        mount("tmpfs", r + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, tmp + ",mode=1777")
        mount("devpts", r + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
        mount("tmpfs", r + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp + ",mode=1777")
        trees = fds[2:2 + len(req["trees"])]
        del fds[2:2 + len(req["trees"])]  # what is left after them: a one-shot run's pipes
        for i, target in enumerate(req["trees"]):
            os.makedirs(r + target, exist_ok=True)
            check(libc.syscall(self.sys["move_mount"], trees[i], b"", AT_FDCWD, b(r + target),
                               MOVE_MOUNT_F_EMPTY_PATH), "attaching %s" % target)
        for fd in trees:
            os.close(fd)
        # With networking, the sandbox's own /etc/hosts and resolv.conf,
        # over the server's (files of the new root, bound, then unlinked).
        for path, data in ((r + "/etc/hosts", req.get("hosts")), (r + "/etc/resolv.conf", req.get("resolv"))):
            if data is None or not os.path.exists(path):
                continue
            src = r + "/.warden-" + os.path.basename(path)
            fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            os.write(fd, data.encode())
            os.close(fd)
            mount(src, path, None, MS_BIND)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.unlink(src)
        # The root itself: read-only from now on.
        mount(None, r, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        trace("mounted")
        os.chdir(r)
        check(libc.syscall(self.sys["pivot_root"], b".", b"."), "pivot_root")
        check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
        os.chdir("/")
        ws = req["workspace"]
        try:
            os.chdir(ws)
        except OSError:
            pass
        trace("pivoted")
        self.confine(req)
        trace("confined")
        if req.get("network"):
            # No code before slirp4netns has connected the namespace.
            if os.read(sock, 1) != b"n":
                return 124
        # The agent is this process, the pid namespace's init: a fork less
        # on the way to the first result, the reaper of every orphan, and
        # out of reach of the code's signals (the kernel ignores, for an
        # init, signals from its own namespace that it has no handler for,
        # SIGKILL included). When it exits, the namespace ends.
        return self.agent_main(req, fds)

    def confine(self, req):
        # Capabilities: the bounding set, the ambient set, then all of ours.
        cap = 0
        while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        hdr = CapHeader(0x20080522, 0)
        data = (CapData * 2)()
        check(libc.syscall(self.sys["capset"], ctypes.byref(hdr), ctypes.byref(data)), "capset")
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        ll = req.get("landlock")
        if ll:
            self.landlock(ll)
        for res, val in req.get("rlimits") or ():
            resource.setrlimit(res, (val, val))
        check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self.fprog), 0, 0), "seccomp")

    def landlock(self, ll):
        attr = struct.pack("=QQQ", ll["handled"], 0, ll["scoped"])[:ll["attr_size"]]
        buf = ctypes.create_string_buffer(attr, len(attr))
        rs = check(libc.syscall(self.sys["landlock_create_ruleset"], buf, len(attr), 0), "landlock_create_ruleset")
        try:
            for path, access, file_mask in ll["rules"]:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    if not os.path.isdir("/proc/self/fd/%d" % fd):
                        access &= file_mask
                    pb = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
                    check(libc.syscall(self.sys["landlock_add_rule"], rs, 1, pb, 0), "landlock_add_rule %s" % path)
                finally:
                    os.close(fd)
            check(libc.syscall(self.sys["landlock_restrict_self"], rs, 0), "landlock_restrict_self")
        finally:
            os.close(rs)

    # -- the agent (still C2)

    def agent_main(self, req, fds):
        sock, errw = fds[0], fds[1]
        os.dup2(sock, 0)
        os.dup2(sock, 1)
        os.dup2(errw, 2)
        # A one-shot run keeps its output pipes (the last two descriptors,
        # both above 2: every descriptor passed is); the agent, nothing more.
        pipes = sorted(fds[-2:]) if req.get("oneshot") else []
        lo = 3
        for fd in pipes + [1 << 16]:
            os.closerange(lo, fd)
            lo = fd + 1
        os.environ.clear()
        for kv in req["env"]:
            k, _, v = kv.partition("=")
            os.environ[k] = v
        os.environ["WARDEN_SUBREAPER"] = "1"  # as the namespace's init, it reaps orphans
        # The interpreter's path as python3 -c with PYTHONPATH=workspace.
        path = ["", req["workspace"]] + self.base_path
        sys.path[:] = path
        sys.dont_write_bytecode = True
        a = self.agent
        a["WORKER_PATH"] = list(path)
        sys.argv[:] = ["-c", "agent"]
        trace("agent")
        if pipes:
            return a["oneshot"](0, fds[-2], fds[-1])
        return a["main"]()


# What learn_hot runs: a small program of the kind agents send (a
# function, a class, loops, comprehensions, strings, an exception, a
# module imported, output).
SAMPLE = """
import math


def primes(n):
    out = [i for i in range(2, n) if all(i % p for p in range(2, int(math.sqrt(i)) + 1))]
    return out


class Counter(object):
    def __init__(self):
        self.seen = {}

    def add(self, word):
        self.seen[word] = self.seen.get(word, 0) + 1
        return self


def check(candidate):
    assert candidate(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    c = Counter()
    for w in "the quick brown fox jumps over the lazy dog".split():
        c.add(w.lower())
    assert c.seen["the"] == 2
    try:
        {}["missing"]
    except KeyError as e:
        assert "missing" in str(e)
    return sorted(c.seen.items(), key=lambda kv: (-kv[1], kv[0]))[:3]


print(check(primes), ", ".join("%d:%s" % (i, chr(97 + i)) for i in range(5)))
"""


def map_text_at_fork():
    """Makes fork copy the page table entries of the server's code and
    read-only data (the interpreter's, the C library's, ...) to each
    child, all of them present: a child then never faults on them (some 85
    faults a one-shot run took, each mapping 16 pages). fork skips a
    private file mapping unless it has anonymous pages (mm/memory.c,
    vma_needs_copy: "copy_page_range is more efficient than faulting"),
    so each gets one: its first byte written again with its own value
    through /proc/self/mem, which copies the page as a write would without
    making the mapping writable (mprotect would, and would count it
    against the commit limit at every fork). Mappings over 16 MiB (a
    locale archive) are left as they are. Best effort: whatever fails
    leaves a mapping as it was."""
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    try:
        mem = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or not fields[5].startswith("/") or fields[1] not in ("r-xp", "r--p"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo > 16 << 20:
                continue
            if libc.madvise(lo, hi - lo, MADV_POPULATE_READ) != 0:
                if ctypes.get_errno() == errno_EINVAL:
                    return  # before Linux 5.14: nothing gained
                continue
            try:
                os.pwrite(mem, os.pread(mem, 1, lo), lo)
            except OSError:
                continue
    finally:
        os.close(mem)


def hot_ranges(pid):
    """The pages pid has of its own (present, anonymous, mapped once) in
    this process's private writable mappings, as pairs of address and
    length (native-endian 64-bit), runs of pages joined."""
    out = []
    pm = os.open("/proc/%d/pagemap" % pid, os.O_RDONLY)
    try:
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-p":
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            data = os.pread(pm, (hi - lo) // PAGE * 8, lo // PAGE * 8)
            start = -1
            for i, (e,) in enumerate(struct.iter_unpack("=Q", data)):
                own = e >> 63 & 1 and e >> 56 & 1 and not e >> 61 & 1
                if own and start < 0:
                    start = i
                elif not own and start >= 0:
                    out.append(struct.pack("=QQ", lo + start * PAGE, (i - start) * PAGE))
                    start = -1
            if start >= 0:
                out.append(struct.pack("=QQ", lo + start * PAGE, (len(data) // 8 - start) * PAGE))
    finally:
        os.close(pm)
    return b"".join(out)


def native_passed():
    """Whether fd 9 is the host's memfd holding the native set-up."""
    try:
        return os.readlink("/proc/self/fd/9").startswith("/memfd:warden-setup")
    except OSError:
        return False


def load_native(seccomp):
    """The native set-up (setup.c) from fd 9, a memfd the host filled, or
    None and why not."""
    if not native_passed():
        return None, "no native set-up passed"
    try:
        lib = ctypes.CDLL("/proc/self/fd/9")
        lib.warden_hot.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.warden_serve.restype = ctypes.c_long
        lib.warden_serve.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.warden_init.argtypes = [ctypes.c_char_p, ctypes.c_int]
        if lib.warden_init(seccomp, len(seccomp)) != 0:
            return None, "the seccomp program does not fit"
        return lib, ""
    except (OSError, AttributeError) as e:
        return None, "loading it: %s" % e
    finally:
        os.close(9)


def check_no_fork_hooks():
    """Whether a raw clone(2) is as good as os.fork() here: no module that
    registers after-fork hooks (random, threading, logging, ...) is
    loaded. The agent imports none of them at start."""
    return not any(m in sys.modules for m in ("random", "threading", "logging", "concurrent.futures", "multiprocessing"))


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up():
    """Bring up lo in the new network namespace, as bwrap does: code that
    serves and connects on 127.0.0.1 inside the sandbox works."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifr = bytearray(struct.pack("16sH14x", b"lo", 0))
        fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr)
        flags = struct.unpack_from("H", ifr, 16)[0] | IFF_UP
        struct.pack_into("H", ifr, 16, flags)
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, ifr)
    finally:
        s.close()


def read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            os.close(fd)
            return b"".join(chunks)
        chunks.append(b)


def main():
    # The agent first (fd 5: its source), then the configuration (fd 4),
    # read with the agent's own JSON decoder.
    agent = {"__name__": "__warden_agent__", "__builtins__": __builtins__, "WARDEN_COMPILED": True}
    exec(compile(read_all(5).decode("utf-8"), "<warden-agent>", "exec"), agent)
    cfg = agent["json_loads"](read_all(4).decode("utf-8"))
    ctl = _socket.socket(fileno=3)
    z = Zygote(cfg, agent)
    return z.serve(ctl)


if __name__ == "__main__":
    sys.exit(main())
