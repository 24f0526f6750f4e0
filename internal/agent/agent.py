# Warden in-sandbox agent. Embedded in the warden binary and started inside
# every sandbox as  python3 -c <this source> agent,  or from bytecode the
# provider compiled once (see compile.go).
#
# Two roles, one file:
#   agent   talks to the host over its stdin/stdout with length-prefixed
#           frames, runs shell commands, and supervises the worker.
#   worker  the persistent Python interpreter holding the session's globals,
#           forked from the agent before anything user-controlled runs.
#           Its fd 1 and 2 are pipes read by the agent, so nothing user code
#           does to stdout/stderr can reach the host channel.
#
# Before each Python execution the worker forks a frozen copy of itself (the
# "snapshot"). If the execution has to be killed (timeout not honoured by
# KeyboardInterrupt, out of memory, crash) the snapshot is promoted and the
# session continues with the globals it had before that execution. Nothing
# here is ever unpickled by the host: the snapshot never leaves the sandbox.
# A worker that has completed no execution takes none: a new worker forked
# from the agent has the same state, and a sandbox used once (a pooled one,
# say) is spared a fork and its page copies.
#
# Start-up cost is kept low: only modules that the interpreter has loaded
# already, or that are written in C, are imported here (_signal, not
# signal, which imports enum; _json, not json, which imports re; _ast, not
# ast); everything else is imported where it is needed, from the standard
# library only (see stdlib_import).
#
# Compatible with Python 3.8+. Standard library only.

import _ast
import _signal as signal
import _thread
import builtins
import errno
import gc
import io
import os
import select
import struct
import sys
import time

PROTO = 1
HDR = struct.Struct(">cI")
MAX_IN_FRAME = 64 << 20  # a request (code) may be large; bounded anyway
CHUNK = 65536
GRACE_INT = 1.0  # seconds between SIGINT and SIGKILL on timeout
# While no result comes after a SIGINT, it is sent again this often: one
# that lands after Python's last look for signals and before a blocking
# call (time.sleep in a C loop, say) is handled only when that call ends.
# A repeat interrupts the call; the worker raises KeyboardInterrupt once.
INT_REPEAT = 0.1
# How long past a deadline the agent waits for the worker to begin the
# cell (its "s") before killing it: reading a large request takes a while
# on a loaded machine, and killing before "s" loses the snapshot's pid.
# Well below the host's own grace (15 s), after which it kills the agent.
START_WAIT = 10.0
IDLE_SNAPSHOT = 0.005  # take a snapshot once the session is idle this long
# OOM killer preferences: the snapshot is expendable and goes first, then
# the worker; the agent (0) last.
ADJ_WORKER = 800
ADJ_SNAPSHOT = 1000
REPR_LIMIT = 16384
# A pause after noticing that a command exited, as if the agent were
# descheduled: only the host tests set it (the agent's environment is the
# provider's, never the sandboxed code's).
TEST_PAUSE_AFTER_EXIT = float(os.environ.get("WARDEN_AGENT_TEST_PAUSE_AFTER_EXIT") or 0)
# Rich outputs ("m" frames), bounded as the host bounds them
# (sandbox.MaxOutputs, MaxOutputTypes, MaxMIMETypeLength; maxDisplayFrame).
MAX_OUTPUTS = 1000
MAX_TYPES = 32
MAX_MIME = 127
MAX_OUTPUT_FRAME = 4 << 20
MIME_MAJOR = frozenset("abcdefghijklmnopqrstuvwxyz")
MIME_MINOR = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.+-")


def valid_mime(s):
    """s matches ^[a-z]+/[a-z0-9.+-]+$ (without importing re)."""
    major, slash, minor = s.partition("/")
    return bool(slash and major and minor and MIME_MAJOR.issuperset(major)
                and MIME_MINOR.issuperset(minor))


def now():
    return time.monotonic()


# ---------------------------------------------------------------- imports

# sys.path as the interpreter started: the worker's. The agent's own later
# imports leave out the workspace and the working directory (see
# stdlib_import), so that files the code writes there are never taken for
# modules of the agent's.
WORKER_PATH = list(sys.path)


def agent_path():
    skip = set(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    skip.update(("", "."))
    try:
        skip.add(os.getcwd())
    except OSError:
        pass
    return [p for p in WORKER_PATH if p not in skip]


def stdlib_import(name):
    """Import a module of the standard library for the agent's or the
    worker's own use, never from the workspace: what the code wrote there
    (a traceback.py, say) must not run in place of the module."""
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    saved = sys.path[:]
    sys.path[:] = agent_path()
    try:
        __import__(name)
    finally:
        sys.path[:] = saved
    return sys.modules[name]


# ---------------------------------------------------------------- JSON
#
# The json module imports re (and enum, functools, ...), which costs more
# than the rest of the agent's start. Its C accelerators (_json) do the
# work on their own; json itself is the fallback.


class _ScanContext(object):
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


def _no_default(o):
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _fast_json():
    import _json
    scan = _json.make_scanner(_ScanContext())
    enc_ascii = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None,
                                   ":", ",", False, False, True)
    enc_utf8 = _json.make_encoder(None, _no_default, _json.encode_basestring, None,
                                  ":", ",", False, False, True)

    def dumps(obj, ensure_ascii=True):
        return "".join((enc_ascii if ensure_ascii else enc_utf8)(obj, 0))

    def loads(s):
        if isinstance(s, (bytes, bytearray)):
            s = s.decode("utf-8")
        try:
            obj, end = scan(s, 0)
        except StopIteration:
            raise ValueError("not JSON")
        if s[end:].strip(" \t\n\r"):
            raise ValueError("extra data after JSON")
        return obj

    sample = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {}}
    if loads(dumps(sample)) != sample or dumps("\u00e9", False) != '"\u00e9"':
        raise ValueError("_json misbehaves")
    return dumps, loads


def _slow_json():
    json = stdlib_import("json")

    def dumps(obj, ensure_ascii=True):
        return json.dumps(obj, ensure_ascii=ensure_ascii, separators=(",", ":"))

    return dumps, json.loads


try:
    json_dumps, json_loads = _fast_json()
except Exception:  # no _json, or one of another shape: the module
    json_dumps, json_loads = _slow_json()


# ---------------------------------------------------------------- framing

def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


# SEND_LOCK keeps frames whole once background processes' threads send
# too; it exists only from the first one on (threading costs an import).
SEND_LOCK = None


def send(fd, kind, payload):
    if isinstance(payload, (dict, list)):
        payload = json_dumps(payload).encode()
    frame = HDR.pack(kind, len(payload)) + payload
    lock = SEND_LOCK
    if lock is None:
        write_all(fd, frame)
        return
    with lock:
        write_all(fd, frame)


class FrameReader(object):
    """Incremental frame decoder for a non-blocking or select()-driven fd."""

    def __init__(self, fd, limit=MAX_IN_FRAME):
        self.fd = fd
        self.buf = bytearray()
        self.limit = limit
        self.eof = False

    def fill(self):
        try:
            data = os.read(self.fd, 1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def next(self):
        """Return (kind, payload) or None. Raises ValueError on bad frames."""
        if len(self.buf) < HDR.size:
            return None
        kind, n = HDR.unpack_from(self.buf)
        if n > self.limit:
            raise ValueError("frame of %d bytes exceeds limit" % n)
        if len(self.buf) < HDR.size + n:
            return None
        payload = bytes(self.buf[HDR.size:HDR.size + n])
        del self.buf[:HDR.size + n]
        return kind, payload

    def next_ready(self):
        return len(self.buf) >= HDR.size and len(self.buf) >= HDR.size + HDR.unpack_from(self.buf)[1]

    def read_blocking(self):
        while True:
            f = self.next()
            if f is not None:
                return f
            if self.eof:
                return None
            self.fill()


# ---------------------------------------------------------------- helpers

def set_oom_adj(v):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(v))
    except OSError:
        pass


def oom_kills():
    """Count of OOM kills in this sandbox's memory cgroup, or None."""
    for path, key in (("/sys/fs/cgroup/memory.events", "oom_kill"),
                      ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key:
                        return int(parts[1])
        except (OSError, ValueError):
            continue
    return None


def set_subreaper():
    """Make the agent the reaper of orphans in its sandbox. A launcher that
    did so already before it executed the agent (bubblewrap's init) says
    so in WARDEN_SUBREAPER=1, which spares the import of ctypes."""
    if os.environ.pop("WARDEN_SUBREAPER", None) == "1":
        return True
    try:
        ctypes = stdlib_import("ctypes")
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:
        return False


def apply_env(managed, env):
    """Make os.environ hold env for the keys Warden manages, leaving keys the
    code set itself alone. Returns the new managed key set."""
    for k in managed - set(env):
        os.environ.pop(k, None)
    for k, v in env.items():
        os.environ[k] = v
    return set(env)


def drain_fds(fds, feed, limit=1 << 20):
    """Read what is in the non-blocking fds now, without waiting, up to
    limit bytes each (a writer that never stops cannot hold us)."""
    for fd in list(fds):
        got = 0
        while got < limit:
            try:
                data = os.read(fd, CHUNK)
            except (BlockingIOError, InterruptedError, OSError):
                break
            if not data:
                break
            got += len(data)
            feed(fd, data)


def parse(code, name):
    """The syntax tree of code, as ast.parse makes it (without importing
    ast, which imports enum)."""
    return compile(code, name, "exec", _ast.PyCF_ONLY_AST)


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


B64_DIGITS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def b64encode(data):
    return stdlib_import("binascii").b2a_base64(bytes(data), newline=False).decode("ascii")


def b64decode(s):
    """As base64.b64decode(s, validate=True), which imports re. Raises
    ValueError."""
    if isinstance(s, str):
        s = s.encode("ascii", "strict")
    binascii = stdlib_import("binascii")
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(s, strict_mode=True)
    body = s.rstrip(b"=")
    if len(s) - len(body) > 2 or not B64_DIGITS.issuperset(body):
        raise ValueError("Non-base64 digit found")
    return binascii.a2b_base64(s)


def fork():
    """os.fork() without Python 3.12's warning about the threads of
    background processes, which are not used in the child."""
    if sys.version_info >= (3, 12):
        warnings = stdlib_import("warnings")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return os.fork()
    return os.fork()


# ---------------------------------------------------------------- spawning

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
# Signals a new program gets at their default action, whatever the agent
# does with them (Python ignores SIGPIPE and SIGXFSZ), as subprocess does.
SPAWN_SIGDEF = tuple(getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, n))


def find_exec(name, env):
    """Where exec would find name (with PATH from env, as subprocess does);
    raises OSError as exec would."""
    if "/" in name:
        return name
    denied = None
    for d in (env.get("PATH") or os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = path
    if denied is not None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


class Spawner(object):
    """Starts programs for the agent: each in a session (and process group)
    of its own, in a working directory, with the given descriptors as its
    standard streams (stdin None: /dev/null) and no others (the agent's own
    are close-on-exec), its signals at their defaults and none blocked.
    posix_spawn (vfork and exec) costs a fraction of subprocess.Popen, whose
    import alone costs more than the command `true`."""

    def __init__(self, home):
        self.home = home  # the agent's working directory, returned to
        self.posix = hasattr(os, "posix_spawn")

    def spawn(self, argv, env, cwd, stdin, stdout, stderr):
        """Returns the pid. Raises OSError as exec would; its filename is
        cwd when that cannot be entered."""
        if self.posix:
            try:
                return self.posix_spawn(argv, env, cwd, stdin, stdout, stderr)
            except (NotImplementedError, TypeError):  # no setsid here
                self.posix = False
        subprocess = stdlib_import("subprocess")
        p = subprocess.Popen(argv, cwd=cwd, env=env,
                             stdin=subprocess.DEVNULL if stdin is None else stdin,
                             stdout=stdout, stderr=stderr, start_new_session=True)
        p.returncode = 0  # the agent reaps it; keep Popen.__del__ quiet
        return p.pid

    def posix_spawn(self, argv, env, cwd, stdin, stdout, stderr):
        acts = [(os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2)]
        if stdin is None:
            acts.insert(0, (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        else:
            acts.insert(0, (os.POSIX_SPAWN_DUP2, stdin, 0))
        # posix_spawn has no working directory of its own: the agent's
        # (one thread spawns; the others do not use paths) goes there
        # and back.
        os.chdir(cwd)
        try:
            path = find_exec(argv[0], env)
            return os.posix_spawn(path, argv, env, file_actions=acts, setsid=True,
                                  setsigdef=SPAWN_SIGDEF, setsigmask=())
        finally:
            try:
                os.chdir(self.home)
            except OSError:
                os.chdir("/")


# ---------------------------------------------------------------- rich outputs
#
# display(), matplotlib figures and the final expression's rich repr become
# outputs: {"type": "display"|"result", "data": {MIME type: content}}, sent
# by the worker as "m" frames while the code runs and forwarded in order
# with stdout. Text types are strings, binary types (is_binary_mime)
# base64, JSON types JSON text. matplotlib is never imported here: it is
# adapted when the code imports it (ImportHook), as Jupyter's inline
# backend does: plt.show() shows every open figure and closes it, and
# figures still open when a cell ends are shown and closed.

# The IPython formatters' methods, tried in this order after
# _repr_mimebundle_.
REPR_METHODS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/json", "_repr_json_"),
)
# Types whose values have no rich repr: no lookups for them.
PLAIN_TYPES = frozenset([int, float, complex, bool, str, bytes, bytearray, list, tuple,
                         dict, set, frozenset, range, type(None)])
MPL_MODULES = ("matplotlib.figure", "matplotlib.pyplot")


def is_binary_mime(mime):
    """As sandbox.IsBinaryMIME: content of these types is base64."""
    major = mime.split("/", 1)[0]
    if major == "image":
        return mime != "image/svg+xml"
    return major in ("audio", "video") or mime in ("application/pdf", "application/octet-stream")


def mime_content(mime, v):
    """v as the string an output holds for mime, or None if it cannot be."""
    if isinstance(v, tuple):  # (data, metadata), as IPython's formatters allow
        v = v[0] if v else None
    if v is None:
        return None
    if is_binary_mime(mime):
        if isinstance(v, str):  # already base64, maybe with line breaks
            try:
                v = b64decode("".join(v.split()))
            except ValueError:
                return None
        if isinstance(v, (bytes, bytearray, memoryview)):
            return b64encode(v)
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v).decode("utf-8", "replace")
    if mime == "application/json" or mime.endswith("+json"):
        json = stdlib_import("json")
        if isinstance(v, str):
            try:
                json.loads(v)
            except ValueError:
                return None
            return v
        try:
            return json.dumps(v, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
    return v if isinstance(v, str) else None


def output_size(msg):
    """What an output counts against the limit (as Go's Output.Size), or
    None if it is malformed."""
    if not isinstance(msg, dict) or msg.get("type") not in ("display", "result"):
        return None
    data = msg.get("data")
    if not isinstance(data, dict) or not data or len(data) > MAX_TYPES:
        return None
    n = 0
    for k, v in data.items():
        if not isinstance(v, str) or len(k) > MAX_MIME or not valid_mime(k):
            return None
        n += len(k) + len(v.encode("utf-8", "surrogatepass"))
    return n


def method(obj, name):
    try:
        m = getattr(obj, name, None)
    except Exception:
        return None
    return m if callable(m) else None


class Rich(object):
    """The rich outputs of the running execution, bounded by the host's
    output limit: once one does not fit, it and every later one are
    dropped (and counted), so the host gets a prefix."""

    def __init__(self, worker):
        self.worker = worker
        self.active = False
        self.limit = self.used = self.count = self.dropped = 0
        self.shown = []

    def begin(self, limit):
        self.active = True
        self.limit = limit
        self.used = self.count = self.dropped = 0
        self.shown = []  # figures shown in this execution

    def end(self):
        self.active = False
        self.shown = []
        return self.dropped

    # -- building outputs

    def warn(self, obj, what, e):
        try:
            sys.stderr.write("display: %s of %s raised %s: %s; that form was left out\n"
                             % (what, type(obj).__name__, type(e).__name__, e))
        except Exception:
            pass

    def plain(self, obj):
        try:
            r = repr(obj)
        except Exception as e:
            r = "<repr failed: %s: %s>" % (type(e).__name__, e)
        if len(r) > REPR_LIMIT:
            r = r[:REPR_LIMIT] + "...[truncated %d chars]" % (len(r) - REPR_LIMIT)
        return r

    def bundle(self, obj, include=None, exclude=None, plain=None, rich_only=False):
        """The MIME bundle of obj, or None when rich_only and it has no rich
        form. Errors in the object's _repr_*_ methods leave that type out."""
        def want(mime):
            return (include is None or mime in include) and (exclude is None or mime not in exclude)

        data = {}
        if type(obj) not in PLAIN_TYPES and not isinstance(obj, type):
            fig = getattr(sys.modules.get("matplotlib.figure"), "Figure", None)
            if fig is not None and isinstance(obj, fig):
                self.shown.append(obj)
                if want("image/png"):
                    png = self.render(obj)
                    if png is not None:
                        data["image/png"] = png
            elif method(obj, "_warden_no_such_method_") is None:  # not a catch-all __getattr__
                self.reprs(obj, data, want, include, exclude)
        if rich_only and not data:
            return None
        if "text/plain" not in data and want("text/plain"):
            data["text/plain"] = plain if plain is not None else self.plain(obj)
        return data

    def reprs(self, obj, data, want, include, exclude):
        m = method(obj, "_repr_mimebundle_")
        if m is not None:
            try:
                r = m(include=include, exclude=exclude)
            except Exception as e:
                self.warn(obj, "_repr_mimebundle_()", e)
                r = None
            if isinstance(r, tuple):
                r = r[0] if r else None
            if isinstance(r, dict):
                for k, v in r.items():
                    self.put(data, k, v, want)
        for mime, name in REPR_METHODS:
            if mime in data or not want(mime):
                continue
            m = method(obj, name)
            if m is None:
                continue
            try:
                v = m()
            except Exception as e:
                self.warn(obj, name + "()", e)
                continue
            self.put(data, mime, v, want)

    @staticmethod
    def put(data, mime, v, want):
        if not isinstance(mime, str) or len(data) >= MAX_TYPES:
            return
        mime = mime.lower()
        if len(mime) > MAX_MIME or not valid_mime(mime) or not want(mime):
            return
        c = mime_content(mime, v)
        if c is not None:
            data[mime] = c

    def render(self, fig):
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", bbox_inches="tight")
        except Exception as e:
            self.warn(fig, "savefig()", e)
            return None
        return b64encode(buf.getvalue())

    # -- sending

    def drop(self):
        self.dropped += 1

    def full(self):
        return self.dropped > 0 or self.count >= MAX_OUTPUTS or self.used >= self.limit

    def emit(self, otype, data):
        if not data:
            return
        if self.full():
            return self.drop()
        size = 0
        for k in list(data):
            v = data[k]
            try:
                n = len(v.encode("utf-8"))
            except UnicodeEncodeError:  # lone surrogates
                b = v.encode("utf-8", "replace")
                n, data[k] = len(b), b.decode("utf-8")
            size += len(k) + n
        if self.used + size > self.limit:
            return self.drop()
        payload = json_dumps({"type": otype, "data": data}, ensure_ascii=False).encode("utf-8")
        if len(payload) > MAX_OUTPUT_FRAME:
            return self.drop()
        self.used += size
        self.count += 1
        self.worker.send_output(payload)

    # -- what the code calls

    def display(self, objs, include=None, exclude=None, raw=False):
        if not self.active:
            return  # a thread of an execution that ended
        for obj in objs:
            if self.full():
                self.drop()
                continue
            if raw and isinstance(obj, dict):
                data = {}
                for k, v in obj.items():
                    self.put(data, k, v, lambda m: True)
            else:
                data = self.bundle(obj, include, exclude)
            self.emit("display", data)

    def result(self, value, plain):
        """The final expression's value, when it has a rich form."""
        if type(value) in PLAIN_TYPES:
            return
        try:
            data = self.bundle(value, plain=plain, rich_only=True)
        except Exception:
            return
        if data:
            self.emit("result", data)

    # -- matplotlib

    def show_figure(self, fig, close=True):
        if not self.active:
            return
        if self.full():
            self.drop()
        else:
            self.emit("display", self.bundle(fig))
        plt = sys.modules.get("matplotlib.pyplot")
        if close and plt is not None:
            plt.close(fig)

    def open_figures(self):
        helpers = sys.modules.get("matplotlib._pylab_helpers")
        if helpers is None:
            return []
        return [m.canvas.figure for m in helpers.Gcf.get_all_fig_managers()]

    def show_all(self):
        """plt.show(): every open figure, then closed."""
        for fig in self.open_figures():
            self.show_figure(fig)

    def end_of_cell(self, interrupted):
        """Figures still open when a cell ends are shown (unless the cell
        showed them already or was interrupted) and closed."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        try:
            if not interrupted:
                for fig in self.open_figures():
                    if not any(f is fig for f in self.shown):
                        self.show_figure(fig, close=False)
        finally:
            plt.close("all")

    def patch_mpl(self, name=None):
        """Make plt.show() and Figure.show() show figures as outputs."""
        rich = self
        mod = sys.modules.get("matplotlib.figure")
        fig = getattr(mod, "Figure", None)
        if fig is not None and not getattr(fig.show, "_warden", False):
            def show(self, warn=True):
                rich.show_figure(self)
            show._warden = True
            fig.show = show
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None and not getattr(plt.show, "_warden", False):
            def pyplot_show(*args, **kwargs):
                rich.show_all()
            pyplot_show._warden = True
            pyplot_show.__doc__ = "Show every open figure as an output of the cell, and close it."
            plt.show = pyplot_show


class ImportHook(object):
    """A sys.meta_path finder that lets the named modules load as usual and
    calls done(name) after: so plt.show() is adapted even in the cell that
    first imports pyplot, and linecache learns the cells' source when it is
    first imported. Other imports cost one set lookup."""

    def __init__(self, names, done):
        self.names = frozenset(names)
        self.done = done
        self.busy = False

    def find_spec(self, name, path=None, target=None):
        if name not in self.names or self.busy:
            return None
        self.busy = True
        try:
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(name, path, target)
                if spec is not None:
                    break
        finally:
            self.busy = False
        if spec is not None and getattr(spec.loader, "exec_module", None) is not None:
            spec.loader = HookLoader(spec.loader, self.done)
        return spec

    def invalidate_caches(self):
        pass


class HookLoader(object):
    """Wraps a module's loader to call done(name) once it has run; the
    module keeps its real loader."""

    def __init__(self, loader, done):
        self.loader = loader
        self.done = done

    def create_module(self, spec):
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        try:
            self.done(module.__name__)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self.loader, name)


def make_display(rich):
    def display(*objs, include=None, exclude=None, raw=False, **kwargs):
        """Show each object as a rich output of the running cell, in the
        richest forms it has (its _repr_html_, _repr_png_, ...
        _repr_mimebundle_ methods; a matplotlib figure as PNG) plus its
        repr as text/plain, as IPython's display() does. With raw=True each
        object is a MIME bundle (a dict of MIME type to content) already.
        Other IPython arguments (metadata, display_id, ...) are ignored."""
        rich.display(objs, include, exclude, raw)
    return display


# ---------------------------------------------------------------- worker

class Promoted(BaseException):
    """Raised in a snapshot when it becomes the worker: it unwinds whatever
    the worker was doing when it forked, back to the top of the loop."""

class Worker(object):
    """The persistent interpreter. Reads requests on fd `rq`, answers on `rs`."""

    def __init__(self, rq, rs):
        self.rq = FrameReader(rq)
        self.rs = rs
        self.g = {"__name__": "__main__", "__builtins__": __builtins__}
        self.cell = 0
        self.managed = set()
        self.saved_out = os.dup(1)
        self.saved_err = os.dup(2)
        self.inos = (os.fstat(1).st_ino, os.fstat(2).st_ino)
        self.streams = (None, None)
        self.frozen = 0
        self.done = 0  # number of the last execution completed
        self.snap_done = -1  # self.done when the snapshot was taken
        self.result_read = True  # the agent has read the last result ("r")
        # Frames to the agent are written whole: threads of the code may
        # call display() while the main thread answers.
        self.wlock = _thread.allocate_lock()
        self.main_thread = _thread.get_ident()
        self.deferred_int = False
        self.int_raised = False  # this execution's KeyboardInterrupt was raised
        self.rich = Rich(self)
        builtins.display = make_display(self.rich)
        # The cells' source, for tracebacks: linecache's cache once the
        # code or a traceback imports it (it imports re: not at start).
        self.sources = {}
        sys.meta_path.insert(0, ImportHook(MPL_MODULES + ("linecache",), self.imported))

    def imported(self, name):
        if name == "linecache":
            sys.modules["linecache"].cache.update(self.sources)
        else:
            self.rich.patch_mpl(name)

    def remember_source(self, name, code):
        entry = (len(code), None, code.splitlines(True), name)
        self.sources[name] = entry
        lc = sys.modules.get("linecache")
        if lc is not None:
            lc.cache[name] = entry

    def send(self, kind, payload):
        with self.wlock:
            send(self.rs, kind, payload)

    def defer_int(self, signum, frame):
        self.deferred_int = True

    def interrupt(self, signum, frame):
        """SIGINT during an execution: KeyboardInterrupt, once. The agent
        repeats its SIGINT until the result comes (see INT_REPEAT); the
        repeats only wake a blocking call, and must not break the code's
        cleanup or our own except clause."""
        if self.int_raised:
            return
        self.int_raised = True
        raise KeyboardInterrupt

    def send_output(self, payload):
        """Send an "m" frame after what the code printed so far, and wait
        for the agent's "a": it forwards what is in our stdout and stderr
        pipes first, and while we wait nothing more is written there, so the
        host gets output and displays in the order the code made them. A
        SIGINT (timeout) waits until the frame is whole: half a frame would
        make the agent kill this worker."""
        self.flush()
        old = None
        if _thread.get_ident() == self.main_thread:  # only the main thread is interrupted
            self.deferred_int = False
            old = signal.signal(signal.SIGINT, self.defer_int)
        try:
            with self.wlock:
                send(self.rs, b"m", payload)
                while True:
                    f = self.rq.read_blocking()
                    if f is None or f[0] == b"a":
                        break
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
                if self.deferred_int and callable(old):
                    old(signal.SIGINT, None)

    def restore_stdio(self):
        # Code may have closed or replaced fd 1/2 or sys.stdout: undo that.
        try:
            intact = (os.fstat(1).st_ino, os.fstat(2).st_ino) == self.inos
        except OSError:
            intact = False
        if not intact:
            os.dup2(self.saved_out, 1)
            os.dup2(self.saved_err, 2)
        out, err = self.streams
        if (intact and sys.stdout is out and sys.stderr is err and out is not None
                and not out.closed and not err.closed):
            return
        made = []
        for fd, name in ((1, "stdout"), (2, "stderr")):
            stream = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8",
                               errors="backslashreplace", closefd=True)
            old = getattr(sys, name)
            setattr(sys, name, stream)
            setattr(sys, "__%s__" % name, stream)
            made.append(stream)
            if old is not None and old is not stream:
                try:
                    old.close()
                except Exception:
                    pass
        self.streams = tuple(made)

    def flush(self):
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except Exception:
                pass

    def snapshot(self):
        """Fork a frozen copy of this process holding the current globals."""
        # Block the promote/discard signals before forking so the child
        # cannot be killed by an early SIGUSR1; both sides set the child's
        # process group so a kill of the worker's group never races it.
        sigs = {signal.SIGUSR1, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            pid = fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
            return 0
        if pid:
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
            return pid
        # Child: stay frozen until promoted (SIGUSR1) or discarded (SIGTERM).
        try:
            os.setpgid(0, 0)
            set_oom_adj(ADJ_SNAPSHOT)
            # Release every other open file (pipes to the code's
            # subprocesses, sockets, ...) so the snapshot never keeps them
            # alive, by pointing the descriptor at /dev/null: closing would
            # let a later open() reuse the number under a stale file object.
            keep = {0, 1, 2, self.rq.fd, self.rs, self.saved_out, self.saved_err}
            keep.update(s.fileno() for s in self.streams if s is not None and not s.closed)
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            fds = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
            for name in os.listdir(fds):
                fd = int(name)
                if fd not in keep and fd != null:
                    try:
                        os.dup2(null, fd, inheritable=False)
                    except OSError:
                        pass
            os.close(null)
            sig = signal.sigwait({signal.SIGUSR1, signal.SIGTERM})
        except BaseException:
            os._exit(70)
        if sig != signal.SIGUSR1:
            os._exit(0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1, signal.SIGTERM})
        set_oom_adj(ADJ_WORKER)
        self.frozen = 0
        self.rq.buf = bytearray()
        self.wlock = _thread.allocate_lock()  # another thread may have held it
        self.send(b"p", {"pid": os.getpid()})
        raise Promoted()

    def resnapshot(self, enabled=True):
        """Replace the snapshot by one of the current state. Runs after a
        reply is sent, off the critical path of the execution."""
        if self.frozen > 0:
            # Reap it now (this runs in idle time): a waitpid(-1) would
            # steal the exit status of the code's own subprocesses, and a
            # lazy reap leaves a zombie around.
            try:
                os.kill(self.frozen, signal.SIGKILL)
                os.waitpid(self.frozen, 0)
            except OSError:
                pass
        self.frozen = 0
        if enabled:
            done = self.done
            pid = self.snapshot()  # raises Promoted in a promoted snapshot
            self.frozen = pid
            self.snap_done = done if pid else -1
            if pid:
                self.warm()

    WARM_REQ = json_dumps({"code": "x = 1\nx", "env": {}, "snapshot": True, "n": 1}).encode()

    def warm(self, full=True):
        """Run the execution path once on throwaway data, in idle time.
        After fork() every page the worker writes is copied on first write;
        doing that now keeps the copies off the next execution (several
        milliseconds on a loaded VM). Nothing of the session's state is
        touched. Not full: only parsing, compiling and running a statement,
        for a warm-up the first request may have to wait for."""
        try:
            req = json_loads(self.WARM_REQ.decode())
            if full:
                json_dumps(self.dry_run(req))
            else:
                exec(compile(parse(req["code"], "<warm>"), "<warm>", "exec"), {"__builtins__": __builtins__})
        except Exception:
            pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def dry_run(self, req):
        """execute(req) on globals of its own, leaving the session's
        globals, cell count and sources as they were. req sets no
        environment variables."""
        g, cell, sources = self.g, self.cell, dict(self.sources)
        self.g = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            return self.execute(req)
        finally:
            self.g, self.cell, self.sources = g, cell, sources

    def idle(self):
        """True once no request has arrived for IDLE_SNAPSHOT seconds."""
        if self.rq.next_ready():
            return False
        r, _, _ = select.select([self.rq.fd], [], [], IDLE_SNAPSHOT)
        return not r

    def loop(self):
        set_oom_adj(ADJ_WORKER)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.send(b"p", {"pid": os.getpid(), "done": self.done})
        # Forked from the agent: the pages the first execution writes are
        # copied on first write, which costs tens of microseconds each on a
        # loaded VM. Copy some now, while the host is busy with the hello;
        # the rest once idle (the agent's warm-up, and after the snapshot).
        self.warm(full=False)
        snapshots = True
        promoted = False
        while True:
            try:
                promoted = self.step(snapshots, promoted)
            except Promoted:
                promoted = True  # take our own snapshot at once
                continue
            if promoted is None:
                return
            snapshots, promoted = promoted, False

    def step(self, snapshots, promoted):
        """One turn of the loop: maybe snapshot, then serve one request.
        Returns whether snapshots are enabled, or None at end of input."""
        # Snapshots are taken in idle time, never on an execution's
        # critical path: fork() costs about 1 ms per 10 MB here.
        # An idle snapshot replaces the one the last "s" named only once
        # the agent has read that execution's result ("r"): before that,
        # the agent may find garbage the code wrote into our channel, kill
        # us and promote the snapshot it knows of, which must still exist.
        # Not before the first execution: a new worker is that state.
        if snapshots and (promoted or (self.done > 0 and self.result_read and self.snap_done != self.done
                                       and self.idle())):
            self.resnapshot()
        f = self.rq.read_blocking()
        if f is None:
            return None
        kind, payload = f
        if kind == b"r":
            self.result_read = True
        if kind != b"x":
            return snapshots
        self.result_read = True  # a request comes only after the last result was read
        req = json_loads(payload.decode())
        if req.get("checkpoint"):
            self.resnapshot()
            self.send(b"d", {"exit_code": 0, "snap": self.snap_done})
            return snapshots
        if req.get("warm"):
            self.warm_cell(req)
            return snapshots
        snapshots = req.get("snapshot", True)
        if not snapshots and self.frozen:
            self.resnapshot(False)
        # From "s" on, the agent may interrupt this execution with SIGINT,
        # even before execute() arms the handler: record it, not ignore it.
        self.deferred_int = self.int_raised = False
        signal.signal(signal.SIGINT, self.defer_int)
        self.send(b"s", {"frozen": self.frozen, "snap": self.snap_done, "done": self.done})
        self.rich.begin(int(req.get("limit", 1 << 20)))
        try:
            res = self.execute(req)
        finally:
            dropped = self.rich.end()
        if dropped:
            res["outputs_dropped"] = dropped
        self.done = int(req.get("n", self.done + 1))
        self.result_read = False
        self.send(b"d", res)
        return snapshots

    def warm_cell(self, req):
        """The agent's warm-up (Agent.warm): the path of a real execution,
        on globals of its own, leaving the session as it was."""
        self.deferred_int = self.int_raised = False
        signal.signal(signal.SIGINT, self.defer_int)
        self.send(b"s", {"frozen": self.frozen, "snap": self.snap_done, "done": self.done})
        self.rich.begin(int(req.get("limit", 1 << 20)))
        try:
            res = self.dry_run(req)
        finally:
            self.rich.end()
        self.send(b"d", res)

    def execute(self, req):
        self.managed = apply_env(self.managed, req.get("env") or {})
        self.restore_stdio()
        self.cell += 1
        name = "<cell-%d>" % self.cell
        code = req["code"]
        res = {"exit_code": 0}
        self.remember_source(name, code)
        try:
            tree = parse(code, name)
        except (SyntaxError, ValueError, OverflowError, MemoryError) as e:
            res["exit_code"] = 1
            res["error"] = self.syntax_error(e, name)
            sys.stderr.write(res["error"]["traceback"])
            self.flush()
            return res
        last = None
        if tree.body and isinstance(tree.body[-1], _ast.Expr):
            last = _ast.Expression(tree.body.pop().value)
        if "matplotlib.figure" in sys.modules:
            self.rich.patch_mpl()  # imported before the hook saw it
        try:
            signal.signal(signal.SIGINT, self.interrupt)
            if self.deferred_int:  # interrupted before it began
                self.interrupt(signal.SIGINT, None)
            exec(compile(tree, name, "exec"), self.g)
            if last is not None:
                value = eval(compile(last, name, "eval"), self.g)
                if value is not None:
                    self.g["_"] = value
                    try:
                        r = repr(value)
                    except Exception as e:
                        r = "<repr failed: %s: %s>" % (type(e).__name__, e)
                    if len(r) > REPR_LIMIT:
                        r = r[:REPR_LIMIT] + "...[truncated %d chars]" % (len(r) - REPR_LIMIT)
                    res["return_value"] = r
                    self.rich.result(value, r)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            res["exit_code"] = 124
            res["interrupted"] = True
        except SystemExit as e:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            c = e.code
            if c is None:
                res["exit_code"] = 0
            elif isinstance(c, int):
                res["exit_code"] = c & 0xFF if c >= 0 else (256 + c) & 0xFF
            else:
                res["exit_code"] = 1
                try:
                    sys.stderr.write(str(c) + "\n")
                except Exception:
                    pass
        except BaseException as e:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            res["exit_code"] = 1
            res["error"] = self.exc_info(e, name)
            try:
                sys.stderr.write(res["error"]["traceback"])
            except Exception:
                pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if "matplotlib.pyplot" in sys.modules:
            self.end_figures(res)
        self.flush()
        return res

    def end_figures(self, res):
        signal.signal(signal.SIGINT, self.interrupt)
        try:
            self.rich.end_of_cell(res.get("interrupted", False))
        except KeyboardInterrupt:
            res["exit_code"] = 124
            res["interrupted"] = True
        except Exception:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    @staticmethod
    def syntax_error(e, name):
        lines = stdlib_import("traceback").format_exception_only(type(e), e)
        return {"name": type(e).__name__, "value": str(getattr(e, "msg", e)),
                "traceback": "".join(lines), "line": getattr(e, "lineno", 0) or 0}

    @staticmethod
    def exc_info(e, name):
        tb = e.__traceback__
        if tb is not None:
            tb = tb.tb_next  # drop our own exec() frame
        line = 0
        t = tb
        while t is not None:
            if t.tb_frame.f_code.co_filename == name:
                line = t.tb_lineno
            t = t.tb_next
        try:
            text = "".join(stdlib_import("traceback").format_exception(type(e), e, tb))
        except Exception:
            text = "%s: <unprintable>\n" % type(e).__name__
        try:
            value = str(e)
        except Exception:
            value = "<unprintable>"
        return {"name": type(e).__name__, "value": value, "traceback": text, "line": line}


def worker_child(out_w, err_w, rq, rs, cwd):
    """The worker's side of the agent's fork: become a fresh interpreter's
    equal (its own session, default signals, the interpreter's sys.path
    and argv, stdout and stderr on the agent's pipes, no other descriptor
    of the agent's), then serve the session. Never returns."""
    def serve():
        global SEND_LOCK
        signal.set_wakeup_fd(-1)  # the agent's pipe, closed below
        os.setsid()
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        # As a new interpreter has them.
        for sig in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        keep = {0, 1, 2, rq, rs}
        fds = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
        for name in os.listdir(fds):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        SEND_LOCK = None  # a background process's thread may have held it
        sys.path[:] = WORKER_PATH
        sys.path.insert(0, "")
        sys.argv[:] = ["-c", "worker", str(rq), str(rs), cwd]
        if cwd:
            try:
                os.chdir(cwd)
            except OSError:
                pass
        Worker(rq, rs).loop()

    exit_after(serve)


def exit_after(fn):
    """Run fn, then end the process, whatever happens: with 0, the code of
    a SystemExit, or 70 and the traceback on stderr; the standard streams
    flushed first."""
    code = 70
    try:
        fn()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        try:
            stdlib_import("traceback").print_exc()
        except BaseException:
            pass
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except BaseException:
                pass
        os._exit(code)


# ---------------------------------------------------------------- one-shot

def oneshot(sock, out_w, err_w):
    """A one-shot run (the fork server's Run): a sandbox made for one
    execution and gone after it. This process, the sandbox's init, reads
    the one request ("q") from the host on sock. Python runs here, in the
    init itself: no second interpreter pays again for the pages this one
    has copied (each first write to a page shared with the fork server
    traps, 10 to 15 us on a paravirtualised machine). A shell command
    runs in a child, which this process waits for, then sends its wait
    status ("x"). The code's stdout and stderr go straight into the
    host's pipes out_w and err_w, its rich outputs ("m", each
    acknowledged with "a") and a Python result ("d") on sock, and the
    sandbox ends with this process. The host enforces the time and output
    limits, kills the sandbox, reads how the init ended from its pidfd
    when it ended without a result, and takes everything from inside as
    untrusted."""
    f = FrameReader(sock).read_blocking()
    if f is None or f[0] != b"q":
        return 2
    req = json_loads(f[1].decode())
    if req.get("op") != "shell":
        oneshot_python(req, sock, out_w, err_w)  # never returns
    pid = fork()
    if pid == 0:
        oneshot_shell(req, out_w, err_w)  # never returns
    os.close(out_w)
    os.close(err_w)
    status = None
    while True:  # as init: orphans are reaped too
        try:
            p, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if p == pid:
            status = st
            break
    try:
        send(sock, b"x", {"status": status})
    except OSError:
        pass
    return 0


# Signals that end a process by default. The init of a pid namespace
# ignores them when they come from inside it (the kernel's rule), so a
# one-shot Python run, which is its sandbox's init, ends on them through
# these handlers: as it would have, but SIGKILL and SIGSTOP, which no
# handler can catch, from the code itself.
ENDING_SIGNALS = ("SIGHUP", "SIGTERM", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
                  "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGPOLL")


def oneshot_stdio(out_w, err_w, keep=-1):
    """stdin /dev/null, stdout and stderr the run's pipes, and no other
    descriptor but keep."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    if keep > 2:
        os.closerange(3, keep)  # close_range(2): a listing costs more
        os.closerange(keep + 1, 1 << 16)
    else:
        os.closerange(3, 1 << 16)


def oneshot_python(req, sock, out_w, err_w):
    """Run a one-shot Python request in this process, the sandbox's init,
    as a worker would (its parsing, result, exceptions, rich outputs),
    send the result and exit."""
    def run():
        rs = os.dup(sock)  # first: sock may be 0, 1 or 2
        oneshot_stdio(out_w, err_w, rs)

        def ended(signum, frame):
            for f in (sys.stdout, sys.stderr):
                try:
                    f.flush()
                except BaseException:
                    pass
            try:
                send(rs, b"x", {"status": signum})  # as a wait status: killed by signum
            finally:
                os._exit(128 + signum)

        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        for name in ENDING_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                signal.signal(sig, ended)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path[:] = WORKER_PATH
        sys.argv[:] = ["-c"]
        w = Worker(rs, rs)
        # The interpreter's own streams are on fds 1 and 2 already (the
        # fork server made them line-buffered, as a worker's are): new
        # ones would cost a codec lookup and their pages.
        if on_fd(sys.stdout, 1) and on_fd(sys.stderr, 2):
            w.streams = (sys.stdout, sys.stderr)
        w.rich.begin(int(req.get("limit", 1 << 20)))
        try:
            res = w.execute(req)
        finally:
            dropped = w.rich.end()
        if dropped:
            res["outputs_dropped"] = dropped
        w.flush()
        w.send(b"d", res)

    exit_after(run)


def oneshot_shell(req, out_w, err_w):
    """The child that runs a one-shot shell request: bash -c (or the
    argv) in its working directory, with the request's environment."""
    code = 70
    try:
        os.setsid()
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        oneshot_stdio(out_w, err_w)
        apply_env(set(), req.get("env") or {})
        cwd = req.get("cwd") or ""
        argv = req.get("argv") or [SHELL, "-c", req.get("command") or ""]
        if cwd:
            try:
                os.chdir(cwd)
            except OSError:
                os.write(2, ("working directory %s does not exist\n" % cwd).encode("utf-8", "backslashreplace"))
                code = 1
                return
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, ("%s: %s\n" % (argv[0], e.strerror or e)).encode("utf-8", "backslashreplace"))
            code = 127 if e.errno == errno.ENOENT else 126
    except BaseException:
        pass
    finally:
        os._exit(code)


def on_fd(stream, fd):
    try:
        return stream.fileno() == fd
    except Exception:
        return False


# ---------------------------------------------------------------- agent

class Output(object):
    """Forwards one stream to the host, up to a byte limit."""

    def __init__(self, out, kind, limit):
        self.out, self.kind, self.limit = out, kind, limit
        self.sent = 0
        self.dropped = 0

    def feed(self, data):
        room = self.limit - self.sent
        if room > 0:
            part = data[:room]
            for i in range(0, len(part), CHUNK):
                if self.out >= 0:  # else a warm-up's: dropped
                    send(self.out, self.kind, part[i:i + CHUNK])
            self.sent += len(part)
        self.dropped += max(0, len(data) - max(room, 0))


class Displays(object):
    """Forwards the worker's rich outputs to the host, within the bounds the
    host enforces (the worker keeps them too; this holds if it does not):
    once one is malformed or does not fit, it and all later ones are
    dropped and counted."""

    def __init__(self, out, limit):
        self.out, self.limit = out, limit
        self.used = self.count = self.dropped = 0

    def feed(self, msg, payload):
        size = output_size(msg)
        if (self.dropped or size is None or self.count >= MAX_OUTPUTS
                or self.used + size > self.limit or len(payload) > MAX_OUTPUT_FRAME):
            self.dropped += 1
            return
        self.used += size
        self.count += 1
        if self.out >= 0:
            send(self.out, b"m", payload)


# ---------------------------------------------------------------- background processes
#
# Commands that run beside the session (the host's process API, E2B's
# commands.run(..., background)): each in a process group of its own,
# pumped by a thread of its own so that the agent's loop, and a cell that
# runs meanwhile, never wait on it. The host drives them with "P" frames
# (start, stdin, close_stdin, signal) that the agent carries out whatever
# it is doing; they answer with "y" (started: the pid, or an error), "b"
# (output: a 4-byte id, a stream byte o or e, the bytes) and "z" (ended).

MAX_PROCS = 64
PROC_POLL = 0.05  # seconds between checks for an exit while pipes are open
PROC_QUIET = 0.05  # after the exit, stop reading once the pipes are quiet this long
PROC_STDIN_MAX = 8 << 20  # input queued for a process that does not read it


class BgProcs(object):
    def __init__(self, agent):
        self.agent = agent
        self.procs = {}  # the host's id -> BgProc, while it runs

    def control(self, payload):
        try:
            req = json_loads(payload.decode())
            pid_id = int(req["id"])
            op = req["op"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # the host never sends such a frame
        if op == "start":
            self.start(pid_id, req)
            return
        p = self.procs.get(pid_id)
        if p is None:
            return  # ended meanwhile: the host has its "z" on the way
        if op == "stdin":
            try:
                p.write(b64decode(req.get("data") or ""))
            except (ValueError, TypeError):
                pass
        elif op == "close_stdin":
            p.write(None)
        elif op == "signal":
            try:
                kill_group(p.pid, int(req.get("signal", signal.SIGKILL)))
            except (ValueError, TypeError):
                pass

    def start(self, pid_id, req):
        global SEND_LOCK
        if SEND_LOCK is None:
            SEND_LOCK = _thread.allocate_lock()
        out = self.agent.pout
        if len(self.procs) >= MAX_PROCS:
            send(out, b"y", {"id": pid_id, "error": "%d processes run already, the most one sandbox may" % MAX_PROCS})
            return
        argv = req.get("argv")
        if not argv:
            argv = [SHELL, "-c", req.get("command") or ""]
        env = dict(os.environ)
        env.update(req.get("env") or {})
        cwd = req.get("cwd") or self.agent.cwd
        fds = {}
        try:
            if req.get("stdin"):
                fds["in_r"], fds["in_w"] = os.pipe()
            fds["out_r"], fds["out_w"] = os.pipe()
            fds["err_r"], fds["err_w"] = os.pipe()
            pid = self.agent.spawner.spawn(argv, env, cwd, fds.get("in_r"), fds["out_w"], fds["err_w"])
        except OSError as e:
            for fd in fds.values():
                os.close(fd)
            msg = "%s: %s" % (argv[0], e.strerror or e)
            if e.filename == cwd or (e.errno == errno.ENOENT and not os.path.isdir(cwd)):
                msg = "working directory %s does not exist" % cwd
            send(out, b"y", {"id": pid_id, "error": msg})
            return
        for k in ("in_r", "out_w", "err_w"):
            if k in fds:
                os.close(fds[k])
        bp = BgProc(self, pid_id, pid, fds.get("in_w"), fds["out_r"], fds["err_r"], float(req.get("timeout") or 0))
        self.procs[pid_id] = bp
        send(out, b"y", {"id": pid_id, "pid": pid})
        _thread.start_new_thread(bp.run, ())


class BgProc(object):
    def __init__(self, procs, pid_id, pid, stdin, stdout, stderr, timeout):
        self.procs, self.id, self.pid = procs, pid_id, pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr  # descriptors; stdin may be None
        self.timeout = timeout
        self.lock = _thread.allocate_lock()
        self.pending = bytearray()
        self.closing = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def write(self, data):
        """Queue input (None: close stdin after what is queued)."""
        with self.lock:
            if data is None:
                self.closing = True
            elif len(self.pending) + len(data) <= PROC_STDIN_MAX:
                self.pending += data
        try:
            os.write(self.wake_w, b"w")
        except OSError:
            pass

    def run(self):
        # A write to the stdin of a process that exited must fail with
        # EPIPE here, not kill the agent (SIGPIPE is at its default).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        agent, out, tag = self.procs.agent, self.procs.agent.pout, struct.pack(">I", self.id)
        fds = {self.stdout: b"o", self.stderr: b"e"}
        for fd in fds:
            os.set_blocking(fd, False)
        stdin = self.stdin
        if stdin is not None:
            os.set_blocking(stdin, False)
        start = now()
        deadline = start + self.timeout if self.timeout > 0 else None
        status = None
        timed_out = False
        quiet_until = None
        while True:
            if status is None:
                status = agent.dead(self.pid)
                if status is not None:
                    quiet_until = now() + PROC_QUIET
                    if TEST_PAUSE_AFTER_EXIT:
                        time.sleep(TEST_PAUSE_AFTER_EXIT)
            if status is None and deadline is not None and now() >= deadline:
                kill_group(self.pid, signal.SIGKILL)
                timed_out = True
                deadline = None
            if quiet_until is not None and (not fds or now() >= quiet_until):
                # Exited and quiet: take what is in the pipes, then stop
                # (background children may hold them open).
                drain_fds(fds, lambda fd, data: send(out, b"b", tag + fds[fd] + data))
                break
            wl = []
            if stdin is not None:
                with self.lock:
                    want = bool(self.pending)
                    closing = self.closing and not self.pending
                if closing or status is not None:
                    os.close(stdin)
                    self.stdin = stdin = None
                elif want:
                    wl.append(stdin)
            wait = PROC_POLL if status is None else max(0.0, quiet_until - now())
            try:
                r, w, _ = select.select(list(fds) + [self.wake_r], wl, [], wait)
            except InterruptedError:
                continue
            if self.wake_r in r:
                try:
                    os.read(self.wake_r, 512)
                except OSError:
                    pass
            if stdin is not None and stdin in w:
                with self.lock:
                    try:
                        n = os.write(stdin, self.pending[:65536])
                        del self.pending[:n]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:  # it closed its stdin or exited
                        self.pending = bytearray()
            for fd in list(fds):
                if fd not in r:
                    continue
                try:
                    data = os.read(fd, CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    del fds[fd]
                    continue
                send(out, b"b", tag + fds[fd] + data)
                if quiet_until is not None:
                    quiet_until = now() + PROC_QUIET
        end = {"id": self.id}
        if status is None:
            status = -1
        if status >= 0 and os.WIFEXITED(status):
            end["exit_code"] = os.WEXITSTATUS(status)
        elif status >= 0 and os.WIFSIGNALED(status):
            end["exit_code"] = 128 + os.WTERMSIG(status)
            end["signal"] = os.WTERMSIG(status)
        else:
            end["exit_code"] = 137
        if timed_out:
            end["timed_out"] = True
        self.procs.procs.pop(self.id, None)
        for fd in (self.stdout, self.stderr, self.stdin, self.wake_r, self.wake_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        send(out, b"z", end)


class Agent(object):
    def __init__(self):
        self.pin = os.dup(0)
        self.pout = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # stray prints of the agent go to its stderr (logs)
        os.close(devnull)
        # What the agent starts gets its standard streams and nothing else
        # (posix_spawn closes no descriptors): whatever it inherited beyond
        # them is close-on-exec from now on, as its own descriptors are.
        try:
            for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"):
                if int(name) > 2:
                    try:
                        os.set_inheritable(int(name), False)
                    except OSError:
                        pass
        except OSError:
            pass
        self.host = FrameReader(self.pin)
        self.subreaper = set_subreaper()
        self.worker = None  # pid
        self.children = {}  # pid -> exit status for reaped children we wait on
        self.sig_r, self.sig_w = os.pipe()
        os.set_blocking(self.sig_w, False)
        os.set_blocking(self.sig_r, False)
        signal.set_wakeup_fd(self.sig_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        self.notes = []
        self.result_read = False  # run_python read a result; the worker awaits its "r"
        self.oom_base = oom_kills()
        self.count = 0  # executions sent to workers (Python)
        self.cwd = os.environ.get("WARDEN_WORKSPACE") or os.getcwd()
        self.spawner = Spawner(os.getcwd())
        self.bg = BgProcs(self)
        home = os.environ.get("HOME")
        if home:
            try:
                os.makedirs(home, exist_ok=True)
            except OSError:
                pass

    # -- children

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children[pid] = status

    def drain_sig(self):
        try:
            while os.read(self.sig_r, 512):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

    def dead(self, pid):
        """Exit status if pid has died (reaping it), else None."""
        self.reap()
        if pid in self.children:
            return self.children.pop(pid)
        if not self.subreaper:  # cannot wait on a promoted worker; probe it
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] in ("Z", "X"):
                    if int(fields[1]) == os.getpid():
                        # Our own child: wait for its status. gVisor shows
                        # a zombie in /proc a moment before its parent can
                        # wait for it; Linux never does.
                        return self.wait_child(pid)
                    return self.children.pop(pid, -1)
            except FileNotFoundError:
                if not os.path.isdir("/proc/self"):  # no procfs (macOS)
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        return -1
                    except OSError:
                        pass
                    return None
                # Gone: another thread's reap() may have taken its status
                # since we looked (a background process's thread polls
                # while the main thread reaps on SIGCHLD).
                return self.children.pop(pid, -1)
            except (OSError, IndexError, ValueError):
                return self.children.pop(pid, -1)
        return None

    def wait_child(self, pid):
        """Exit status of a child known to have exited, or -1 if it cannot
        be had within a second."""
        t = now() + 1
        while True:
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return self.children.pop(pid, -1)
            if got:
                return status
            if now() >= t:
                return -1
            time.sleep(0.001)

    def gone(self, pid):
        """True once pid has exited (whether or not we reaped it already)."""
        if self.dead(pid) is not None:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False

    # -- worker management

    def start_worker(self):
        """Fork the worker. It inherits the agent's interpreter with its
        modules loaded, and shares its memory until either writes: no
        second interpreter to start, no agent source to compile again. The
        agent holds nothing the sandboxed code may not see (what the host
        sends it is meant for the sandbox), and the worker drops the
        agent's descriptors before any code runs."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        rq_r, rq_w = os.pipe()
        rs_r, rs_w = os.pipe()
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()  # or the worker would write it again
            except Exception:
                pass
        # Objects alive now (modules, the agent's code) stay where they
        # are: the collector would otherwise touch, and so copy, their
        # pages in both processes.
        gc.freeze()
        try:
            pid = fork()
        except OSError:
            for fd in (out_r, out_w, err_r, err_w, rq_r, rq_w, rs_r, rs_w):
                os.close(fd)
            raise
        if pid == 0:
            worker_child(out_w, err_w, rq_r, rs_w, self.cwd)  # never returns
        for fd in (out_w, err_w, rq_r, rs_w):
            os.close(fd)
        for fd in (out_r, err_r, rs_r):
            os.set_blocking(fd, False)
        self.worker = pid
        self.w_out, self.w_err, self.w_rq = out_r, err_r, rq_w
        self.w_rs = FrameReader(rs_r, limit=MAX_IN_FRAME)
        # The worker's ready frame ("p") is not waited for: it has nothing
        # left to start, and the host's first request waits in its pipe.

    def stop_worker(self):
        if self.worker:
            kill_group(self.worker, signal.SIGKILL)
            for fd in (self.w_out, self.w_err, self.w_rq, self.w_rs.fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.wait_gone(self.worker, now() + 5)
        self.worker = None

    def wait_gone(self, pid, deadline):
        """Wait until pid has exited, reaping it, or until deadline; True if
        it has. A child's exit wakes the wait (SIGCHLD on the wakeup pipe),
        so it costs no polling; only a process that is not our child (a
        promoted snapshot when the agent is no subreaper) is polled."""
        while True:
            self.drain_sig()  # before looking: a later exit wakes the select
            if self.gone(pid):
                return True
            left = deadline - now()
            if left <= 0:
                return False
            try:
                select.select([self.sig_r], [], [], left if self.subreaper else min(left, 0.01))
            except InterruptedError:
                pass

    def wait_dead(self, pid, deadline):
        """As wait_gone, but returns the exit status (None if pid still runs
        at deadline, -1 if it was not ours to reap)."""
        while True:
            self.drain_sig()
            status = self.dead(pid)
            if status is not None:
                return status
            left = deadline - now()
            if left <= 0:
                return None
            try:
                select.select([self.sig_r], [], [], left if self.subreaper else min(left, 0.01))
            except InterruptedError:
                pass

    # -- executions

    def warm(self):
        """Run a cell that prints through the whole execution path, output
        included, in the agent and the worker, before the host's first
        request: after the forks (the worker from the agent, the snapshot
        from the worker) each page either writes is copied on its first
        write, which costs the first execution several milliseconds (a
        pooled sandbox's first result took 5.1-5.6 ms with an empty cell
        here, 4.7-4.8 ms with this one). Its output and result go nowhere,
        the session's state and count are untouched, and the host's frames
        wait in their pipe meanwhile."""
        try:
            self.run_python({"code": "print(1)", "timeout": 5}, warm=True)
            self.tell_result_read()
        except Exception:
            pass

    def revive_worker(self):
        """Replace a worker that died while idle (with its snapshot: the code
        of a shell command killed both, say, with kill -9 -1, which spares
        an agent that is its pid namespace's init). Writing the next request
        to it would fail for good."""
        if self.worker is not None and self.dead(self.worker) is not None:
            self.stop_worker()
            self.notes.append("the Python interpreter had been killed while idle; it was restarted "
                              "and its variables were lost")

    def run_python(self, req, warm=False):
        notes = []
        self.revive_worker()
        if self.worker is None:
            self.start_worker()
        if self.notes and not warm:
            notes.extend(self.notes)
            self.notes = []
        limit = int(req.get("limit", 1 << 20))
        out = -1 if warm else self.pout
        outs = {self.w_out: Output(out, b"o", limit), self.w_err: Output(out, b"e", limit)}
        timeout = float(req.get("timeout", 120))
        start = now()
        deadline = start + timeout
        checkpoint = bool(req.get("checkpoint"))
        if not checkpoint and not warm:
            self.count += 1
        n = self.count
        send_req = dict(code=req.get("code", ""), env=req.get("env") or {}, snapshot=req.get("snapshot", True),
                        n=n, checkpoint=checkpoint, limit=limit)
        if warm:
            send_req["warm"] = True
        shown = Displays(out, limit)
        send(self.w_rq, b"x", send_req)
        frozen = 0
        snap = -1
        ran = True  # the worker has completed an execution before this one
        phase = 0  # 0 running, 1 interrupted, 2 killed
        result = None
        cancelled = False
        started = False  # the worker said "s": a SIGINT now reaches this execution
        why = None
        next_int = 0.0  # in phase 1: when to repeat the SIGINT
        while result is None:
            wait = 0.5
            if phase < 2:
                wait = max(0.0, min(wait, deadline - now()))
            if phase == 1 and next_int:
                wait = max(0.0, min(wait, next_int - now()))
            if phase == 0 and not started and wait == 0.0:
                wait = 0.005  # past the deadline, waiting for "s"
            rl = [self.w_out, self.w_err, self.w_rs.fd, self.sig_r]
            if not self.host.eof and not warm:
                rl.append(self.pin)
            try:
                r, _, _ = select.select(rl, [], [], wait)
            except InterruptedError:
                r = []
            for fd in (self.w_out, self.w_err):
                if fd in r:
                    self.pump(fd, outs[fd])
            if self.sig_r in r:
                self.drain_sig()
            if self.pin in r:
                self.host.fill()
            # The cancel may have come in the same read as the request, or
            # with an earlier fill: look at the buffer every turn. (Not in a
            # warm-up: the host's frames are all for later.)
            try:
                f = None if warm else self.host_next()
            except ValueError:
                f = None
            if f is not None and f[0] == b"c" and phase == 0:
                cancelled = True
                deadline = now()
            if self.w_rs.fd in r:
                self.w_rs.fill()
            try:
                f = self.w_rs.next()
            except ValueError:
                f, why = None, "the code wrote garbage into the interpreter's control channel"
            while f is not None and result is None:
                kind, payload = f
                try:
                    msg = json_loads(payload.decode())
                except ValueError:
                    why = "the code wrote garbage into the interpreter's control channel"
                    break
                if kind == b"s":
                    started = True
                    frozen = int(msg.get("frozen") or 0)
                    snap = int(msg.get("snap", -1))
                    ran = int(msg.get("done", 1)) > 0
                elif kind == b"d":
                    result = msg
                elif kind == b"m":
                    # The worker waits for our "a": what is in its pipes
                    # now was printed before this output, and goes first.
                    self.pump_pending(outs)
                    shown.feed(msg, payload)
                    self.ack()
                try:
                    f = self.w_rs.next()
                except ValueError:
                    f, why = None, "the code wrote garbage into the interpreter's control channel"
            if result is not None:
                # The worker may replace its snapshot only once we have
                # read its result: until then garbage the code wrote
                # before it can still make us kill the worker and promote
                # the snapshot its "s" named (see Worker.step). The "r"
                # goes after our reply, off the execution's path.
                self.result_read = True
                break
            status = self.dead(self.worker)
            if why is not None or status is not None or (phase == 1 and now() >= deadline):
                # The worker is gone or must go: kill its process group and
                # promote the snapshot, if there is one.
                kill_group(self.worker, signal.SIGKILL)
                if status is None:
                    status = self.wait_dead(self.worker, now() + 5)
                self.pump_all(outs)
                result = {"exit_code": 137}
                oom, oom0 = oom_kills(), self.oom_base
                self.oom_base = oom
                if phase >= 1:
                    result["exit_code"] = 124
                    result["timed_out"] = not cancelled
                    result["cancelled"] = cancelled
                elif oom is not None and oom0 is not None and oom > oom0:
                    result["oom_killed"] = True
                elif why is not None:
                    result["error"] = {"name": "ProtocolError", "value": why, "traceback": why + "\n"}
                    result["exit_code"] = 1
                elif status is not None and status >= 0 and os.WIFEXITED(status):
                    result["exit_code"] = os.WEXITSTATUS(status)
                    notes.append("the interpreter exited with code %d" % result["exit_code"])
                elif status is not None and status >= 0 and os.WIFSIGNALED(status):
                    result["exit_code"] = 128 + os.WTERMSIG(status)
                    notes.append("the interpreter was killed by signal %d" % os.WTERMSIG(status))
                notes.extend(self.recover(frozen, snap, n, ran))
                frozen = 0
                break
            if phase == 0 and now() >= deadline:
                # Interrupt only once the worker has begun this request: a
                # SIGINT before that would be lost, and the grace run out
                # into a kill that costs the session its newest state.
                if started:
                    kill_group(self.worker, signal.SIGINT)
                    phase = 1
                    deadline = now() + GRACE_INT
                    next_int = now() + INT_REPEAT
                elif now() >= deadline + START_WAIT:
                    phase = 1  # it never began: kill it on the next turn
            elif phase == 1 and next_int and now() >= next_int:
                kill_group(self.worker, signal.SIGINT)
                next_int = now() + INT_REPEAT
        self.pump_all(outs)
        if result.get("interrupted"):
            result.pop("interrupted")
            result["timed_out"] = not cancelled
            result["cancelled"] = cancelled
        if result.get("timed_out"):
            msg = "Execution timed out after %s seconds" % fmt_secs(timeout)
            result["error"] = {"name": "TimeoutError", "value": msg, "traceback": msg + "\n"}
            outs[self.w_err].feed((msg + "\n").encode())
        if result.get("cancelled"):
            msg = "Execution cancelled"
            result["error"] = {"name": "Cancelled", "value": msg, "traceback": msg + "\n"}
        if result.get("oom_killed"):
            msg = "Execution killed: out of memory (memory limit reached)"
            result["error"] = {"name": "MemoryError", "value": msg, "traceback": msg + "\n"}
            outs[self.w_err].feed((msg + "\n").encode())
        result["duration_ms"] = (now() - start) * 1000.0
        result["stdout_dropped"] = outs[self.w_out].dropped
        result["stderr_dropped"] = outs[self.w_err].dropped
        dropped = result.get("outputs_dropped")
        dropped = (dropped if type(dropped) is int and dropped > 0 else 0) + shown.dropped
        if dropped:
            result["outputs_dropped"] = dropped
        else:
            result.pop("outputs_dropped", None)
        result["execution_count"] = n
        if notes:
            result["notes"] = notes
            if result.get("cancelled"):
                # Whoever cancelled it is gone and never reads this result:
                # what happened to the session (restored from a snapshot,
                # restarted) is said again on the next execution's.
                self.notes.extend(notes)
        return result

    def recover(self, frozen, snap, n, ran=True):
        """After the worker was killed: promote its snapshot or start anew.
        ran is false when the worker had completed no execution (and so
        took no snapshot): a new worker is the state it had."""
        old = self.worker
        kill_group(old, signal.SIGKILL)
        if frozen > 0 and self.dead(frozen) is None:
            # Whatever the dead worker left in its control pipe (a partial
            # frame, or garbage the code wrote) must not be read as the
            # snapshot's answer.
            while True:
                try:
                    if not os.read(self.w_rs.fd, 1 << 16):
                        break
                except OSError:
                    break
            self.w_rs.buf = bytearray()
            try:
                os.kill(frozen, signal.SIGUSR1)
                t = now() + 5
                while now() < t:
                    f = self.w_rs.next()
                    if f is not None and f[0] == b"p":
                        self.worker = frozen
                        self.drain_stdio()
                        if snap == n - 1:
                            return ["variables from before this execution were kept"]
                        if snap <= 0:
                            return ["variables were restored to the state the session started with; "
                                    "changes made by executions 1 to %d were lost" % (n - 1)]
                        return ["variables were restored to their state after execution %d; changes made "
                                "by executions %d to %d were lost (the session had not been idle for a snapshot)"
                                % (snap, snap + 1, n - 1)]
                    if self.dead(frozen) is not None:
                        break
                    r, _, _ = select.select([self.w_rs.fd], [], [], 0.1)
                    if r:
                        self.w_rs.fill()
            except (OSError, ValueError):
                pass
        self.stop_worker()
        self.start_worker()
        if not ran:
            return ["variables from before this execution were kept"]
        return ["the interpreter was restarted and its variables were lost"]

    def drain_stdio(self):
        for fd in (self.w_out, self.w_err):
            while True:
                try:
                    if not os.read(fd, CHUNK):
                        break
                except OSError:
                    break

    def pump(self, fd, out):
        try:
            data = os.read(fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False
        if data:
            out.feed(data)
            return True
        return False

    def pump_all(self, outs):
        for fd, out in outs.items():
            while self.pump(fd, out):
                pass

    def tell_result_read(self):
        """Send the worker the "r" that run_python owes it, if any."""
        if self.result_read:
            self.result_read = False
            self.ack(b"r")

    def ack(self, kind=b"a"):
        """Let the worker go on after an output ("a"), or tell it its
        result was read ("r"). A worker that died since must not take the
        agent with it (SIGPIPE), nor a pipe full of acks nobody reads
        (frames the code forged) block it: then the worker has acks to
        read already."""
        old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        os.set_blocking(self.w_rq, False)
        try:
            os.write(self.w_rq, HDR.pack(kind, 0))  # atomic: under PIPE_BUF
        except OSError:
            pass
        finally:
            os.set_blocking(self.w_rq, True)
            signal.signal(signal.SIGPIPE, old)

    def pump_pending(self, outs):
        """Forward what is in the worker's stdout and stderr pipes now (a
        pipe's worth at most: a writer that never stops cannot hold us)."""
        for fd, out in outs.items():
            for _ in range(64):
                if not self.pump(fd, out):
                    break

    def run_shell(self, req):
        limit = int(req.get("limit", 1 << 20))
        timeout = float(req.get("timeout", 10))
        env = dict(os.environ)
        env.update(req.get("env") or {})
        cwd = req.get("cwd") or self.cwd
        argv = req.get("argv") or [SHELL, "-c", req["command"]]
        out = Output(self.pout, b"o", limit)
        err = Output(self.pout, b"e", limit)
        start = now()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = self.spawner.spawn(argv, env, cwd, None, out_w, err_w)
        except OSError as e:
            for fd in (out_r, err_r):
                os.close(fd)
            msg = "%s: %s\n" % (argv[0], e.strerror or e)
            code = 127 if e.errno in (errno.ENOENT,) else 126
            if e.filename == cwd or (e.errno == errno.ENOENT and not os.path.isdir(cwd)):
                # posix_spawn names the program, not the directory: say
                # only what was wrong.
                code = 1
                msg = "working directory %s does not exist\n" % cwd
            err.feed(msg.encode())
            return {"exit_code": code, "duration_ms": (now() - start) * 1000.0}
        finally:
            os.close(out_w)
            os.close(err_w)
        fds = {out_r: out, err_r: err}
        for fd in fds:
            os.set_blocking(fd, False)
        deadline = start + timeout
        status = None
        timed_out = cancelled = False
        quiet_until = None
        # Until the command has exited and its pipes are done. Its exit
        # wakes the select (SIGCHLD on the wakeup pipe), as do its output,
        # the host's frames and the deadline: nothing here polls.
        while True:
            if status is None:
                status = self.dead(pid)
                if status is not None:
                    quiet_until = now() + 0.05
                    if TEST_PAUSE_AFTER_EXIT:
                        time.sleep(TEST_PAUSE_AFTER_EXIT)  # a descheduled agent, for the tests
            if quiet_until is not None and (not fds or now() >= quiet_until):
                # Exited, and quiet for a while: background children may
                # hold the pipes open, so stop waiting. But what the
                # command wrote is in the pipes, however long this agent
                # was descheduled since the last read: take it first.
                drain_fds(fds, lambda fd, data: fds[fd].feed(data))
                break
            if status is None:
                wait = max(0.0, min(0.5, deadline - now()))
            else:
                wait = max(0.0, quiet_until - now())
            rl = list(fds) + [self.sig_r]
            if not self.host.eof:
                rl.append(self.pin)
            try:
                r, _, _ = select.select(rl, [], [], wait)
            except InterruptedError:
                r = []
            if self.sig_r in r:
                self.drain_sig()  # the next turn's dead() reaps
            if self.pin in r:
                self.host.fill()
            # The cancel may have come in the same read as the request, or
            # with an earlier fill: look at the buffer every turn.
            try:
                f = self.host_next()
            except ValueError:
                f = None
            if f is not None and f[0] == b"c" and status is None:
                cancelled = True
                deadline = now()
            for fd in list(fds):
                if fd in r:
                    try:
                        data = os.read(fd, CHUNK)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        fds[fd].feed(data)
                        if quiet_until is not None:
                            quiet_until = now() + 0.05
                    else:
                        del fds[fd]
            if status is None and now() >= deadline:
                kill_group(pid, signal.SIGKILL)
                timed_out = not cancelled
                status = self.wait_dead(pid, now() + 5)
                drain_fds(fds, lambda fd, data: fds[fd].feed(data), limit=max(limit, 1 << 20))
                break
        for fd in (out_r, err_r):
            os.close(fd)
        res = {"duration_ms": (now() - start) * 1000.0}
        if timed_out or cancelled:
            res["exit_code"] = 124
            res["timed_out"] = timed_out
            res["cancelled"] = cancelled
            msg = ("Command timed out after %s seconds" % fmt_secs(timeout)) if timed_out else "Command cancelled"
            err.feed(("\n" if err.sent else "").encode() + (msg + "\n").encode())
        elif status is not None and status >= 0:
            if os.WIFEXITED(status):
                res["exit_code"] = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                res["exit_code"] = 128 + os.WTERMSIG(status)
        else:
            res["exit_code"] = 137
        if res.get("exit_code") == 137 and not timed_out:
            oom, oom0 = oom_kills(), self.oom_base
            self.oom_base = oom
            if oom is not None and oom0 is not None and oom > oom0:
                res["oom_killed"] = True
        res["stdout_dropped"] = out.dropped
        res["stderr_dropped"] = err.dropped
        return res

    def host_next(self):
        """The host's next frame other than a process control ("P"), which
        is carried out on the spot, whatever the agent is doing; None if
        there is none yet. Raises ValueError on a broken frame."""
        while True:
            f = self.host.next()
            if f is None or f[0] != b"P":
                return f
            self.bg.control(f[1])

    def next_request(self):
        """Wait for the host's next frame, reaping orphans meanwhile: the
        agent is their subreaper, and zombies must not pile up while the
        session is idle."""
        while True:
            f = self.host_next()
            if f is not None or self.host.eof:
                return f
            try:
                r, _, _ = select.select([self.pin, self.sig_r], [], [])
            except InterruptedError:
                continue
            if self.sig_r in r:
                self.drain_sig()
                self.reap()
            if self.pin in r:
                self.host.fill()

    def serve(self):
        info = {"proto": PROTO, "pid": os.getpid(), "python": sys.version.split()[0],
                "subreaper": self.subreaper, "oom_counter": oom_kills() is not None,
                "compiled": globals().get("WARDEN_COMPILED") is True}
        try:
            self.start_worker()
            info["worker"] = self.worker
        except Exception as e:
            info["worker_error"] = str(e)
        send(self.pout, b"h", info)
        # Warm up only if the host is in no hurry: its first request would
        # wait for the warm-up and pay for the copies anyway.
        if self.worker is not None and not self.host.next_ready():
            try:
                idle = not select.select([self.pin], [], [], IDLE_SNAPSHOT)[0]
            except InterruptedError:
                idle = False
            if idle:
                self.warm()
        while True:
            try:
                f = self.next_request()
            except ValueError:
                return 2
            if f is None:
                return 0
            kind, payload = f
            if kind == b"c":
                continue  # a cancel that arrived after its execution ended
            if kind != b"q":
                return 2
            req = json_loads(payload.decode())
            op = req.get("op")
            try:
                if op == "python":
                    res = self.run_python(req)
                elif op == "shell":
                    res = self.run_shell(req)
                elif op == "ping":
                    res = {"exit_code": 0}
                elif op == "exit":
                    self.stop_worker()
                    send(self.pout, b"r", {"exit_code": 0})
                    return 0
                else:
                    res = {"exit_code": 2, "agent_error": "unknown op %r" % op}
            except Exception as e:
                res = {"exit_code": 1, "agent_error": "%s: %s" % (type(e).__name__, e)}
                stdlib_import("traceback").print_exc()
            self.reap()
            send(self.pout, b"r", res)
            self.tell_result_read()


def fmt_secs(t):
    return str(int(t)) if t == int(t) else ("%g" % t)


def main():
    return Agent().serve()


if __name__ == "__main__":
    sys.exit(main())
