package seatbelt

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// ProfileOptions describe what one sandbox may touch. Every path must be
// absolute; [Profile] cleans it and maps macOS's symlinked roots (/tmp,
// /var, /etc) to their real place under /private, because Seatbelt matches
// the resolved path of a file, never the path a program used. Profile does
// not resolve other symlinks (it touches no file system): the provider
// passes paths through filepath.EvalSymlinks first.
type ProfileOptions struct {
	// Workspace is the sandbox's workspace: read, write and map code.
	// Required.
	Workspace string
	// TmpDir is the sandbox's private temporary directory (its TMPDIR):
	// read and write. Required. The host's shared /private/tmp and
	// /private/var/tmp are not granted, unlike in the original profile.
	TmpDir string
	// HomeDir is the sandbox's private HOME: read and write. Optional.
	HomeDir string
	// ReadDirs may be read, never written. A read directory inside a
	// writable one is made read-only by a deny rule placed after the
	// allows (Seatbelt applies the last matching rule).
	ReadDirs []string
	// WriteDirs may be read and written.
	WriteDirs []string
	// Python is the interpreter that runs the agent, and PythonDirs the
	// directories of its installation (prefixes, standard library,
	// site-packages): read-only. Both optional; list symlinked and resolved
	// forms alike, as a program may name either.
	Python     string
	PythonDirs []string
	// Network allows outbound IP connections (except to the host's own
	// loopback) and DNS resolution. Off: no network operation is allowed.
	Network bool
	// MetadataEverywhere allows reading file metadata (stat, not contents
	// nor directory listings) anywhere, as the original profile did. Off,
	// metadata is readable only where reading is allowed and on the
	// ancestors of those directories, which path resolution and
	// realpath() need. An escape hatch for programs that stat outside
	// their directories, should the narrow rule break them.
	MetadataEverywhere bool
}

// System locations every sandbox may read: what a Python interpreter, bash
// and the usual command-line tools need to start and run. These are
// read-only on macOS (the sealed system volume) or hold no user data.
// /System is not granted whole: /System/Volumes/Data is the data volume,
// /Users included, under another name.
var systemReadSubpaths = []string{
	"/System/Library",                   // frameworks, dylibs, SystemVersion.plist
	"/System/Cryptexes",                 // macOS 13+: the OS cryptex (dyld shared cache)
	"/System/Volumes/Preboot/Cryptexes", // its real location
	"/Library/Apple",                    // Apple-installed system libraries, Rosetta
	"/bin", "/sbin",
	"/usr/bin", "/usr/lib", "/usr/libexec", "/usr/sbin", "/usr/share", // not /usr/local
	"/private/var/db/timezone", // target of /etc/localtime
}

// Single system files every sandbox may read.
var systemReadLiterals = []string{
	"/private/etc/group",
	"/private/etc/localtime",
	"/private/etc/passwd", // system accounts only; users live in Open Directory
	"/private/etc/protocols",
	"/private/etc/services",
	"/dev/random",
	"/dev/urandom",
}

// Files read only to resolve names when networking is on.
var networkReadLiterals = []string{
	"/private/etc/hosts",
	"/private/etc/resolv.conf",
	"/private/var/run/resolv.conf", // target of /etc/resolv.conf
}

// sysctls readable by sandboxed code: hardware and OS identification that
// Python (os.cpu_count, platform, os.getloadavg), numpy's CPU dispatch and
// the C library read. Not kern.proc.*, which lists the host's processes.
var sysctlNames = []string{
	"hw.activecpu", "hw.byteorder", "hw.cachelinesize", "hw.cpufamily",
	"hw.cpufrequency", "hw.cpusubtype", "hw.cputype", "hw.l1dcachesize",
	"hw.l1icachesize", "hw.l2cachesize", "hw.l3cachesize", "hw.logicalcpu",
	"hw.logicalcpu_max", "hw.machine", "hw.memsize", "hw.model", "hw.ncpu",
	"hw.nperflevels", "hw.pagesize", "hw.physicalcpu", "hw.physicalcpu_max",
	"hw.tbfrequency", "hw.vectorunit",
	"kern.argmax", "kern.boottime", "kern.hostname", "kern.maxfiles",
	"kern.maxfilesperproc", "kern.maxproc", "kern.ngroups",
	"kern.osproductversion", "kern.osrelease", "kern.ostype",
	"kern.osvariant_status", "kern.osversion", "kern.secure_kernel",
	"kern.usrstack64", "kern.version",
	"security.mac.lockdown_mode_state",
	"sysctl.proc_cputype", "sysctl.proc_translated",
	"vm.loadavg",
}

var sysctlPrefixes = []string{"hw.optional.", "hw.perflevel", "machdep.cpu."}

// Profile returns the Seatbelt (SBPL) profile for o, for
// `sandbox-exec -p`. It denies everything by default and allows:
//
//   - fork and exec; signals and process information only within the
//     same sandbox;
//   - reading the system locations a Python interpreter and bash need
//     (systemReadSubpaths, systemReadLiterals), the interpreter's
//     installation, ReadDirs, and the directories below;
//   - reading and writing the workspace, TmpDir, HomeDir and WriteDirs;
//     writing data (not creating) to /dev/null and to the descriptors
//     a process already holds (/dev/fd, /dev/stdout, /dev/stderr);
//   - file metadata on the ancestors of those directories (see
//     ProfileOptions.MetadataEverywhere);
//   - a short list of sysctls, two Mach services (user and group lookups,
//     notifications), POSIX semaphores and local (AF_UNIX) sockets, which
//     multiprocessing and asyncio need; connecting them to a socket file
//     is a network operation and stays denied;
//   - with Network only: outbound IP except to localhost, and the
//     resolver (mDNSResponder's socket, the DNS configuration service,
//     /etc/hosts and resolv.conf).
//
// Errors wrap [sandbox.ErrInvalid]: a missing, relative or root ("/")
// path, or a path with a control character (NUL, newline, ...) or invalid
// UTF-8, which no profile string may carry.
func Profile(o ProfileOptions) (string, error) {
	var errs []error
	canon := func(what, p string) string {
		c, err := canonicalPath(p)
		if err == nil && c == "/" {
			err = errors.New("would expose the whole file system")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("seatbelt profile: %s %q: %v: %w", what, p, err, sandbox.ErrInvalid))
		}
		return c
	}
	canonAll := func(what string, ps []string) []string {
		var out []string
		for _, p := range ps {
			if c := canon(what, p); c != "" && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out
	}
	ws := canon("workspace", o.Workspace)
	tmp := canon("tmp dir", o.TmpDir)
	var home, py string
	if o.HomeDir != "" {
		home = canon("home dir", o.HomeDir)
	}
	if o.Python != "" {
		py = canon("python", o.Python)
	}
	pyDirs := canonAll("python dir", o.PythonDirs)
	readDirs := canonAll("read dir", o.ReadDirs)
	writeDirs := canonAll("write dir", o.WriteDirs)
	if err := errors.Join(errs...); err != nil {
		return "", err
	}

	writable := []string{ws, tmp}
	if home != "" {
		writable = append(writable, home)
	}
	for _, d := range writeDirs {
		if !slices.Contains(writable, d) {
			writable = append(writable, d)
		}
	}

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("; Warden Seatbelt profile, generated by internal/provider/seatbelt. Do not edit.\n")
	w("(version 1)\n")
	w("(deny default)\n")

	w("\n; Processes. Children inherit this profile. Signals and process\n")
	w("; information stay within this sandbox.\n")
	w("(allow process-fork)\n")
	w("(allow process-exec)\n")
	w("(allow signal (target same-sandbox))\n")
	w("(allow process-info* (target same-sandbox))\n")

	w("\n; System information.\n")
	w("(allow sysctl-read")
	for _, n := range sysctlNames {
		w("\n  (sysctl-name %s)", quote(n))
	}
	for _, n := range sysctlPrefixes {
		w("\n  (sysctl-name-prefix %s)", quote(n))
	}
	w(")\n")

	w("\n; Mach services: user and group names (getpwuid), notify(3).\n")
	w("(allow mach-lookup\n")
	w("  (global-name \"com.apple.system.opendirectoryd.libinfo\")\n")
	w("  (global-name \"com.apple.system.notification_center\"))\n")

	w("\n; POSIX semaphores and unconnected local sockets (socketpair) for\n")
	w("; multiprocessing and asyncio. No POSIX shared memory: its names are\n")
	w("; global to the host.\n")
	w("(allow ipc-posix-sem)\n")
	w("(allow system-socket (socket-domain AF_UNIX))\n")

	w("\n; System files, read-only. File mapping as code is allowed wherever\n")
	w("; reading is: it needs an open descriptor anyway.\n")
	w("(allow file-read* file-map-executable")
	for _, p := range systemReadSubpaths {
		w("\n  (subpath %s)", quote(p))
	}
	for _, p := range systemReadLiterals {
		w("\n  (literal %s)", quote(p))
	}
	w(")\n")
	w("(allow file-read* (literal \"/\"))\n")

	w("\n; Devices: /dev/null, and the descriptors a process already holds.\n")
	w("; Writing data only: no creating, removing or changing modes. Not\n")
	w("; /dev/tty (the agent has no controlling terminal) nor /dev/dtracehelper.\n")
	w("(allow file-read* file-write-data\n")
	w("  (literal \"/dev/null\")\n")
	w("  (literal \"/dev/zero\")\n")
	w("  (literal \"/dev/stdin\")\n")
	w("  (literal \"/dev/stdout\")\n")
	w("  (literal \"/dev/stderr\")\n")
	w("  (subpath \"/dev/fd\"))\n")

	if py != "" || len(pyDirs) > 0 {
		w("\n; The Python interpreter and its installation, read-only.\n")
		w("(allow file-read* file-map-executable")
		if py != "" {
			w("\n  (literal %s)", quote(py))
		}
		for _, d := range pyDirs {
			w("\n  (subpath %s)", quote(d))
		}
		w(")\n")
	}

	if len(readDirs) > 0 {
		w("\n; Read-only directories.\n")
		w("(allow file-read* file-map-executable")
		for _, d := range readDirs {
			w("\n  (subpath %s)", quote(d))
		}
		w(")\n")
	}

	w("\n; The workspace, the private TMPDIR and HOME, and the writable\n")
	w("; directories. Hard links (file-link) stay denied: a link to an outside\n")
	w("; file would carry it past these path rules.\n")
	w("(allow file-read* file-write* file-map-executable")
	for _, d := range writable {
		w("\n  (subpath %s)", quote(d))
	}
	w(")\n")

	// A read-only directory inside a writable one: the deny comes after
	// the allow, and Seatbelt applies the last matching rule.
	var roInside []string
	for _, d := range readDirs {
		if slices.Contains(writable, d) {
			continue // also granted writable: the grant wins
		}
		for _, wd := range writable {
			if within(d, wd) {
				roInside = append(roInside, d)
				break
			}
		}
	}
	if len(roInside) > 0 {
		w("\n; Read-only directories inside writable ones stay read-only.\n")
		w("(deny file-write*")
		for _, d := range roInside {
			w("\n  (subpath %s)", quote(d))
		}
		w(")\n")
	}

	w("\n; Metadata (stat, readlink; not contents or listings) of the ancestors\n")
	w("; of the directories above, and of the /etc, /tmp and /var symlinks,\n")
	w("; so that paths resolve and realpath() works.\n")
	if o.MetadataEverywhere {
		w("; MetadataEverywhere: the metadata of every file is readable.\n")
		w("(allow file-read-metadata file-test-existence)\n")
	} else {
		roots := slices.Concat(systemReadSubpaths, systemReadLiterals, []string{"/dev/null", "/dev/fd"}, pyDirs, readDirs, writable)
		if py != "" {
			roots = append(roots, py)
		}
		if o.Network {
			roots = append(roots, networkReadLiterals...)
		}
		anc := []string{"/etc", "/tmp", "/var"}
		for _, r := range roots {
			for a := path.Dir(r); a != "/"; a = path.Dir(a) {
				anc = append(anc, a)
			}
		}
		slices.Sort(anc)
		anc = slices.Compact(anc)
		w("(allow file-read-metadata file-test-existence")
		for _, a := range anc {
			w("\n  (literal %s)", quote(a))
		}
		w(")\n")
	}

	if o.Network {
		w("\n; Network: outbound IP, DNS through mDNSResponder and the DNS\n")
		w("; configuration service. No inbound connections or listening.\n")
		w("(allow system-socket (socket-domain AF_INET) (socket-domain AF_INET6))\n")
		w("(allow network-outbound\n")
		w("  (remote ip \"*:*\")\n")
		w("  (literal \"/private/var/run/mDNSResponder\"))\n")
		w("(allow mach-lookup (global-name \"com.apple.SystemConfiguration.DNSConfiguration\"))\n")
		w("(allow file-read*")
		for _, p := range networkReadLiterals {
			w("\n  (literal %s)", quote(p))
		}
		w("\n  (subpath \"/private/etc/ssl\"))\n")
		w("; Not the host's own services on loopback (Warden's API among them).\n")
		w("; Last, so that it overrides the allow above.\n")
		w("(deny network-outbound (remote ip \"localhost:*\"))\n")
	} else {
		w("\n; Network: none. No network operation is allowed.\n")
	}
	return b.String(), nil
}

// canonicalPath checks p and returns it cleaned, with /tmp, /var and /etc
// replaced by their targets under /private. It refuses what cannot be put
// in a profile string safely.
func canonicalPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("path is empty")
	}
	if !utf8.ValidString(p) {
		return "", errors.New("path is not valid UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("path contains the control character %U", r)
		}
	}
	if !path.IsAbs(p) {
		return "", errors.New("path is not absolute")
	}
	p = path.Clean(p)
	for _, link := range []string{"/tmp", "/var", "/etc"} {
		if p == link || strings.HasPrefix(p, link+"/") {
			p = "/private" + p
			break
		}
	}
	return p, nil
}

// quote returns s as an SBPL (Scheme) string literal. Only backslash and
// double quote are special inside one; canonicalPath has refused control
// characters, which TinyScheme would read as escapes or line ends.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
