//go:build linux

package bwrap

import (
	"encoding/binary"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// emulate runs a seccomp program on one system call, as the kernel would.
func emulate(t *testing.T, p []insn, arch, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.code {
		case bpfLdWAbs:
			acc = binary.LittleEndian.Uint32(data[in.k:])
		case bpfJeqK, bpfJgeK, bpfJsetK:
			taken := acc == in.k
			if in.code == bpfJgeK {
				taken = acc >= in.k
			} else if in.code == bpfJsetK {
				taken = acc&in.k != 0
			}
			if taken {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case bpfRetK:
			return in.k
		default:
			t.Fatalf("unknown opcode %#x at %d", in.code, pc)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func TestSeccompFilter(t *testing.T) {
	t.Parallel()
	eperm := uint32(retErrno | uint32(syscall.EPERM))
	enosys := uint32(retErrno | uint32(syscall.ENOSYS))
	for _, arch := range []string{"amd64", "arm64"} {
		tab := archTables[arch]
		p, err := buildFilter(tab)
		if err != nil {
			t.Fatal(err)
		}
		nr := func(name string) uint32 {
			n, ok := tab.nr[name]
			if !ok {
				t.Fatalf("%s: no %s in the table", arch, name)
			}
			return n
		}
		cases := []struct {
			name string
			arch uint32
			nr   uint32
			args [6]uint64
			want uint32
		}{
			{"read or uname", tab.audit, 63, [6]uint64{}, retAllow},
			{"wrong arch", 0x40000003, 1, [6]uint64{}, retKillPro}, // AUDIT_ARCH_I386
			{"mount", tab.audit, nr("mount"), [6]uint64{}, eperm},
			{"ptrace", tab.audit, nr("ptrace"), [6]uint64{}, eperm},
			{"setns", tab.audit, nr("setns"), [6]uint64{}, eperm},
			{"bpf", tab.audit, nr("bpf"), [6]uint64{}, eperm},
			{"io_uring_setup", tab.audit, nr("io_uring_setup"), [6]uint64{}, eperm},
			{"clone3", tab.audit, nr("clone3"), [6]uint64{}, enosys},
			{"clone thread", tab.audit, nr("clone"), [6]uint64{0x3d0f00}, retAllow},
			{"clone fork", tab.audit, nr("clone"), [6]uint64{0x1200011}, retAllow},
			{"clone newuser", tab.audit, nr("clone"), [6]uint64{0x10000000 | 17}, eperm},
			{"clone newns", tab.audit, nr("clone"), [6]uint64{0x20000}, eperm},
			{"unshare newnet", tab.audit, nr("unshare"), [6]uint64{0x40000000}, eperm},
			{"unshare newtime", tab.audit, nr("unshare"), [6]uint64{0x80}, eperm},
			{"unshare files", tab.audit, nr("unshare"), [6]uint64{0x400}, retAllow},
			{"ioctl TCGETS", tab.audit, nr("ioctl"), [6]uint64{1, 0x5401}, retAllow},
			{"ioctl TIOCSTI", tab.audit, nr("ioctl"), [6]uint64{1, 0x5412}, eperm},
			{"ioctl TIOCSTI high bits", tab.audit, nr("ioctl"), [6]uint64{1, 0xdead00005412}, eperm},
			{"ioctl TIOCLINUX", tab.audit, nr("ioctl"), [6]uint64{1, 0x541C}, eperm},
			{"personality query", tab.audit, nr("personality"), [6]uint64{0xffffffff}, retAllow},
			{"personality linux", tab.audit, nr("personality"), [6]uint64{0}, retAllow},
			{"personality read-implies-exec", tab.audit, nr("personality"), [6]uint64{0x0400000}, eperm},
			{"socket inet", tab.audit, nr("socket"), [6]uint64{2, 1}, retAllow},
			{"socket unix", tab.audit, nr("socket"), [6]uint64{1, 1}, retAllow},
			{"socket vsock", tab.audit, nr("socket"), [6]uint64{40, 1}, eperm},
			{"socket vsock high bits", tab.audit, nr("socket"), [6]uint64{0x100000028, 1}, eperm},
			{"mbind", tab.audit, nr("mbind"), [6]uint64{}, eperm},
			{"move_pages", tab.audit, nr("move_pages"), [6]uint64{}, eperm},
			{"open_tree_attr", tab.audit, nr("open_tree_attr"), [6]uint64{}, eperm},
			{"newest reviewed call", tab.audit, tab.maxNr, [6]uint64{}, retAllow},
			{"call newer than the review", tab.audit, tab.maxNr + 1, [6]uint64{}, enosys},
		}
		if tab.x32 {
			cases = append(cases, struct {
				name string
				arch uint32
				nr   uint32
				args [6]uint64
				want uint32
			}{"x32 mount", tab.audit, x32Bit | nr("mount"), [6]uint64{}, enosys})
		}
		for _, c := range cases {
			if got := emulate(t, p, c.arch, c.nr, c.args); got != c.want {
				t.Errorf("%s: %s = %#x, want %#x", arch, c.name, got, c.want)
			}
		}
	}
}

// TestSyscallTable checks the running architecture's numbers against
// golang.org/x/sys/unix, for the calls both architectures have.
func TestSyscallTable(t *testing.T) {
	t.Parallel()
	tab, ok := archTables[runtime.GOARCH]
	if !ok {
		t.Skipf("no table for %s", runtime.GOARCH)
	}
	want := map[string]uint32{
		"mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "pivot_root": unix.SYS_PIVOT_ROOT,
		"chroot": unix.SYS_CHROOT, "ptrace": unix.SYS_PTRACE, "process_vm_readv": unix.SYS_PROCESS_VM_READV,
		"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV, "kexec_load": unix.SYS_KEXEC_LOAD,
		"kexec_file_load": unix.SYS_KEXEC_FILE_LOAD, "init_module": unix.SYS_INIT_MODULE,
		"finit_module": unix.SYS_FINIT_MODULE, "delete_module": unix.SYS_DELETE_MODULE, "bpf": unix.SYS_BPF,
		"perf_event_open": unix.SYS_PERF_EVENT_OPEN, "keyctl": unix.SYS_KEYCTL, "add_key": unix.SYS_ADD_KEY,
		"request_key": unix.SYS_REQUEST_KEY, "setns": unix.SYS_SETNS, "userfaultfd": unix.SYS_USERFAULTFD,
		"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT, "name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT,
		"swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF, "reboot": unix.SYS_REBOOT, "acct": unix.SYS_ACCT,
		"quotactl": unix.SYS_QUOTACTL, "quotactl_fd": unix.SYS_QUOTACTL_FD, "syslog": unix.SYS_SYSLOG,
		"settimeofday": unix.SYS_SETTIMEOFDAY, "clock_settime": unix.SYS_CLOCK_SETTIME,
		"adjtimex": unix.SYS_ADJTIMEX, "clock_adjtime": unix.SYS_CLOCK_ADJTIME,
		"io_uring_setup": unix.SYS_IO_URING_SETUP, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"io_uring_register": unix.SYS_IO_URING_REGISTER, "fanotify_init": unix.SYS_FANOTIFY_INIT,
		"lookup_dcookie": unix.SYS_LOOKUP_DCOOKIE, "vhangup": unix.SYS_VHANGUP, "kcmp": unix.SYS_KCMP,
		"fsopen": unix.SYS_FSOPEN, "fsconfig": unix.SYS_FSCONFIG, "fsmount": unix.SYS_FSMOUNT,
		"fspick": unix.SYS_FSPICK, "move_mount": unix.SYS_MOVE_MOUNT, "open_tree": unix.SYS_OPEN_TREE,
		"mount_setattr": unix.SYS_MOUNT_SETATTR, "pidfd_getfd": unix.SYS_PIDFD_GETFD,
		"nfsservctl": unix.SYS_NFSSERVCTL, "unshare": unix.SYS_UNSHARE, "clone": unix.SYS_CLONE,
		"clone3": unix.SYS_CLONE3, "personality": unix.SYS_PERSONALITY, "ioctl": unix.SYS_IOCTL,
		"socket": unix.SYS_SOCKET, "mbind": unix.SYS_MBIND, "set_mempolicy": unix.SYS_SET_MEMPOLICY,
		"migrate_pages": unix.SYS_MIGRATE_PAGES, "move_pages": unix.SYS_MOVE_PAGES,
		"open_tree_attr": unix.SYS_OPEN_TREE_ATTR,
	}
	for name, n := range want {
		if got, ok := tab.nr[name]; !ok || got != n {
			t.Errorf("%s: table has %d (present %v), x/sys/unix says %d", name, got, ok, n)
		}
	}
	for _, r := range policy() {
		if _, ok := tab.nr[r.name]; !ok && want[r.name] != 0 {
			t.Errorf("policy names %s, missing from the %s table", r.name, runtime.GOARCH)
		}
	}
}
