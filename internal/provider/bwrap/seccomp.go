package bwrap

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// The seccomp filter is classic BPF written out by hand (ADR 0006): a deny
// list in the spirit of Docker's default profile, run by the kernel on
// every system call of the sandbox. Everything not listed is allowed;
// namespaces, no capabilities, Landlock and the read-only mounts do the rest.

// Classic BPF opcodes (linux/bpf_common.h) and seccomp return values
// (linux/seccomp.h) the filter uses.
const (
	bpfLdWAbs  = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJgeK    = 0x35 // BPF_JMP | BPF_JGE | BPF_K
	bpfJsetK   = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	bpfRetK    = 0x06 // BPF_RET | BPF_K
	retKillPro = 0x80000000
	retErrno   = 0x00050000
	retAllow   = 0x7fff0000

	// Offsets in struct seccomp_data.
	offNr   = 0
	offArch = 4
	offArgs = 16 // args[i] at 16 + 8*i; the low 32 bits first (little endian)

	// x32 system calls on amd64 carry this bit and the x86-64 audit arch.
	x32Bit = 0x40000000

	afVsock = 40 // AF_VSOCK
)

// nsFlags are the clone flags that create namespaces (CLONE_NEWNS,
// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET); unshare also takes
// CLONE_NEWTIME (0x80), which clone reads as part of the exit signal.
const (
	cloneNSFlags   = 0x7E020000
	unshareNSFlags = cloneNSFlags | 0x80
)

// insn is one struct sock_filter.
type insn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

type ruleKind int

const (
	denyAlways  ruleKind = iota // fail with errno
	denyMask                    // fail if the argument has any bit of mask
	denyValues                  // fail if the argument is one of values
	allowValues                 // fail unless the argument is one of values
)

// rule says what happens to one system call. Arguments are compared on
// their low 32 bits only: every argument the filter looks at is a 32-bit
// int or flag word that the kernel truncates, so comparing all 64 bits
// would let a caller slip past with junk in the high half.
type rule struct {
	name   string
	kind   ruleKind
	errno  syscall.Errno
	arg    int
	mask   uint32
	values []uint32
}

// policy is the list of rules, by name; each architecture's table maps the
// names to numbers (and lacks the calls it does not have).
func policy() []rule {
	deny := func(names ...string) []rule {
		rs := make([]rule, len(names))
		for i, n := range names {
			rs[i] = rule{name: n, kind: denyAlways, errno: syscall.EPERM}
		}
		return rs
	}
	rs := deny(
		// Mounts and the root: the sandbox's view of the filesystem is fixed.
		"mount", "umount2", "pivot_root", "chroot",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr",
		// Other processes' memory and descriptors.
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
		// The kernel itself: modules, kexec, BPF, perf, keyrings.
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"create_module", "get_kernel_syms", "query_module",
		"bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
		"lookup_dcookie", "_sysctl", "uselib", "nfsservctl",
		// Namespaces: entering one. Creating them is handled below.
		"setns",
		// Escaping through file handles (the shocker exploit).
		"open_by_handle_at", "name_to_handle_at",
		// Host administration.
		"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "syslog",
		"settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
		"iopl", "ioperm", "fanotify_init", "vhangup",
		// io_uring runs operations outside the reach of this filter.
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		// NUMA placement of memory, which Docker leaves to CAP_SYS_NICE.
		"mbind", "set_mempolicy", "migrate_pages", "move_pages",
	)
	return append(rs,
		// clone3 passes its flags in memory the filter cannot read: ENOSYS,
		// as Docker does, makes glibc fall back to clone, which is checked.
		rule{name: "clone3", kind: denyAlways, errno: syscall.ENOSYS},
		rule{name: "clone", kind: denyMask, errno: syscall.EPERM, arg: 0, mask: cloneNSFlags},
		rule{name: "unshare", kind: denyMask, errno: syscall.EPERM, arg: 0, mask: unshareNSFlags},
		// Only the personalities Docker allows: Linux, UNAME26, PER_LINUX32
		// variants and the query.
		rule{name: "personality", kind: allowValues, errno: syscall.EPERM, arg: 0,
			values: []uint32{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}},
		// vsock talks to the hypervisor (and, in a VM, its host), whatever
		// the network namespace says: AF_VSOCK, as Docker refuses it.
		rule{name: "socket", kind: denyValues, errno: syscall.EPERM, arg: 0, values: []uint32{afVsock}},
		// Faking terminal input (TIOCSTI) and the console's TIOCLINUX.
		rule{name: "ioctl", kind: denyValues, errno: syscall.EPERM, arg: 1,
			values: []uint32{0x5412, 0x541C}},
	)
}

// archTable is one architecture's audit arch and system call numbers.
type archTable struct {
	audit uint32
	x32   bool // reject the x32 ABI's numbers (amd64)
	maxNr uint32
	nr    map[string]uint32
}

// buildFilter assembles the filter for an architecture. Unknown names in
// the policy are skipped: the call does not exist there.
func buildFilter(t archTable) ([]insn, error) {
	p := []insn{
		{code: bpfLdWAbs, k: offArch},
		{code: bpfJeqK, jt: 1, jf: 0, k: t.audit},
		{code: bpfRetK, k: retKillPro}, // another ABI (i386 on amd64, arm32): kill
		{code: bpfLdWAbs, k: offNr},
	}
	if t.x32 {
		p = append(p,
			insn{code: bpfJgeK, jt: 0, jf: 1, k: x32Bit},
			insn{code: bpfRetK, k: retErrno | uint32(syscall.ENOSYS)},
		)
	}
	if t.maxNr == 0 {
		return nil, fmt.Errorf("seccomp table without maxNr")
	}
	p = append(p,
		insn{code: bpfJgeK, jt: 0, jf: 1, k: t.maxNr + 1},
		insn{code: bpfRetK, k: retErrno | uint32(syscall.ENOSYS)},
	)
	for _, r := range policy() {
		nr, ok := t.nr[r.name]
		if !ok {
			continue
		}
		deny := insn{code: bpfRetK, k: retErrno | uint32(r.errno)}
		allow := insn{code: bpfRetK, k: retAllow}
		var block []insn
		ldArg := insn{code: bpfLdWAbs, k: uint32(offArgs + 8*r.arg)}
		switch r.kind {
		case denyAlways:
			block = []insn{deny}
		case denyMask:
			block = []insn{ldArg, {code: bpfJsetK, jt: 0, jf: 1, k: r.mask}, deny, allow}
		case denyValues, allowValues:
			// ld; jeq v1..vn (match jumps to the second return); first; second.
			n := len(r.values)
			if n == 0 || n > 64 {
				return nil, fmt.Errorf("seccomp rule %s: %d values", r.name, n)
			}
			block = append(block, ldArg)
			for i, v := range r.values {
				block = append(block, insn{code: bpfJeqK, jt: uint8(n - i), jf: 0, k: v})
			}
			if r.kind == denyValues {
				block = append(block, allow, deny)
			} else {
				block = append(block, deny, allow)
			}
		}
		if len(block) > 255 {
			return nil, fmt.Errorf("seccomp rule %s: block too long", r.name)
		}
		p = append(p, insn{code: bpfJeqK, jt: 0, jf: uint8(len(block)), k: nr})
		p = append(p, block...)
	}
	p = append(p, insn{code: bpfRetK, k: retAllow})
	if len(p) > 4096 { // BPF_MAXINSNS
		return nil, fmt.Errorf("seccomp filter of %d instructions is too long", len(p))
	}
	return p, nil
}

// encode renders a program as the kernel's struct sock_filter array, the
// form bwrap --seccomp reads from its descriptor.
func encode(p []insn) []byte {
	b := make([]byte, 0, 8*len(p))
	for _, in := range p {
		b = binary.LittleEndian.AppendUint16(b, in.code)
		b = append(b, in.jt, in.jf)
		b = binary.LittleEndian.AppendUint32(b, in.k)
	}
	return b
}

// seccompProgram is the encoded filter for an architecture (GOARCH name).
func seccompProgram(arch string) ([]byte, error) {
	t, ok := archTables[arch]
	if !ok {
		return nil, fmt.Errorf("no seccomp system call table for %s", arch)
	}
	p, err := buildFilter(t)
	if err != nil {
		return nil, err
	}
	return encode(p), nil
}
