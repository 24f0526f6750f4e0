package forkserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// zygoteFacts is what the fork server saw of its own view when it
// started, and told the host in its ready message: what the set-up
// programs depend on that the host cannot see itself.
type zygoteFacts struct {
	uid, gid int
	shared   bool     // some mount of the server's is shared: each child makes its own private first
	procRO   []string // entries of /proc that are made read-only
	etc      []string // /etc/hosts, /etc/resolv.conf: those that exist
	hot      int      // pages a one-shot run writes, copied into each at once (0: none learnt)
}

// parseFacts reads "uid=1000 gid=1000 shared=0 proc_ro=sys,irq etc=/etc/hosts".
func parseFacts(s string) (zygoteFacts, error) {
	var f zygoteFacts
	seen := map[string]bool{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		if seen[k] {
			return f, fmt.Errorf("%q: %s twice", s, k)
		}
		var err error
		switch k {
		case "uid":
			f.uid, err = strconv.Atoi(v)
		case "gid":
			f.gid, err = strconv.Atoi(v)
		case "shared":
			f.shared = v == "1"
		case "proc_ro":
			f.procRO = list(v)
		case "etc":
			f.etc = list(v)
		case "hot":
			f.hot, err = strconv.Atoi(v)
		default:
			continue
		}
		if err != nil {
			return f, fmt.Errorf("%s: %w", kv, err)
		}
		seen[k] = true
	}
	if !seen["uid"] || !seen["gid"] || !seen["shared"] || !seen["proc_ro"] || !seen["etc"] {
		return f, fmt.Errorf("%q: want uid, gid, shared, proc_ro and etc", s)
	}
	return f, nil
}

func list(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Flags of mount(2), and namespaces unshare(2) makes.
const (
	msRdonly  = 1
	msNosuid  = 2
	msNodev   = 4
	msNoexec  = 8
	msRemount = 32
	msBind    = 4096
	msRec     = 16384
	msPrivate = 1 << 18

	cloneNewNS     = 0x00020000
	cloneNewCgroup = 0x02000000
	cloneNewUTS    = 0x04000000
	cloneNewIPC    = 0x08000000
	cloneNewNet    = 0x40000000
)

// maxRequest is the largest message the fork server reads (setup.c's
// W_MAX_MSG), and maxFDs the most descriptors one passes (W_MAX_FDS).
const (
	maxRequest = 1 << 16
	maxFDs     = 64
)

// setupProgram is the program setup.c runs in a new child for req: the
// steps of zygote.py's Zygote.child, init and confine, in their order, as
// NUL-terminated tokens; "%i" is the i-th descriptor passed with the
// request: the agent's socket, the stderr pipe, req.Cgroups cgroup.procs
// files, one mount tree per req.Trees, and a one-shot run's two pipes.
// The Python set-up (no compiler) takes the same steps from the request
// itself; the isolation tests run on both.
func setupProgram(req childRequest, nfds int, f zygoteFacts, l layout, root string) ([]byte, error) {
	var out []string
	op := func(args ...any) {
		for _, a := range args {
			switch a := a.(type) {
			case string:
				out = append(out, a)
			case int:
				out = append(out, strconv.Itoa(a))
			case uint64:
				out = append(out, strconv.FormatUint(a, 10))
			default:
				panic(fmt.Sprintf("setupProgram: %T", a))
			}
		}
	}
	fd := func(i int) string { return "%" + strconv.Itoa(i) }
	step := func(what string) {
		if req.Trace {
			op("trace", what)
		}
	}
	if want := 2 + req.Cgroups + len(req.Trees); nfds < want || (req.Oneshot && nfds < want+2) {
		return nil, fmt.Errorf("%d descriptors for a request that needs %d", nfds, want)
	}
	// C1
	op("dup2", fd(1), 2)
	step("c1")
	op("keep", nfds+1)
	for i := range nfds {
		op(fd(i))
	}
	op(2)
	op("sigdfl", int(unix.SIGCHLD))
	for i := range req.Cgroups {
		op("cgroup", fd(2+i))
	}
	if req.Hot && f.hot > 0 {
		// Once in the sandbox's memory cgroup: the copies are its own.
		op("hot")
		step("hot")
	}
	step("c1-go")
	op("file", "/proc/self/setgroups", "deny")
	op("file", "/proc/self/uid_map", fmt.Sprintf("%d %d 1", f.uid, f.uid))
	op("file", "/proc/self/gid_map", fmt.Sprintf("%d %d 1", f.gid, f.gid))
	step("mapped")
	op("unshare", cloneNewNS|cloneNewNet|cloneNewIPC|cloneNewUTS|cloneNewCgroup)
	step("unshared")
	// C2: pid 1
	op("hostname", req.Hostname)
	op("loopback")
	op("byte", fd(0), "2")
	op("setsid")
	op("file", "/proc/sys/user/max_user_namespaces", "0")
	if f.shared {
		op("mount", "", "/", "", msRec|msPrivate, "")
	}
	r := root
	op("mount", "tmpfs", r, "tmpfs", msNosuid|msNodev, "mode=0755,size=1m")
	for _, s := range l.symlinks {
		op("symlink", s[1], r+s[0])
	}
	for _, d := range l.dirs {
		op("mkdirs", r+d)
		op("mount", d, r+d, "", msBind|msRec, "")
	}
	for _, d := range []string{"/proc", "/dev", "/tmp"} {
		op("mkdirs", r+d)
	}
	op("mount", "proc", r+"/proc", "proc", msNosuid|msNodev|msNoexec, "")
	for _, sub := range f.procRO {
		d := r + "/proc/" + sub
		op("mount", d, d, "", msBind|msRec, "")
		op("mount", "", d, "", msRemount|msBind|msRdonly|msNosuid|msNodev|msNoexec, "")
	}
	op("mount", "/dev", r+"/dev", "", msBind|msRec, "")
	tmp := "size=" + strconv.FormatInt(req.TmpSize, 10)
	op("mount", "tmpfs", r+"/dev/shm", "tmpfs", msNosuid|msNodev, tmp+",mode=1777")
	op("mount", "devpts", r+"/dev/pts", "devpts", msNosuid|msNoexec, "newinstance,ptmxmode=0666,mode=620")
	op("mount", "tmpfs", r+"/tmp", "tmpfs", msNosuid|msNodev, tmp+",mode=1777")
	for i, target := range req.Trees {
		op("mkdirs", r+target)
		op("attach", fd(2+req.Cgroups+i), r+target)
	}
	for _, e := range []struct {
		path string
		data *string
	}{{"/etc/hosts", req.Hosts}, {"/etc/resolv.conf", req.Resolv}} {
		if e.data == nil || !slices.Contains(f.etc, e.path) {
			continue
		}
		src := r + "/.warden-" + path.Base(e.path)
		op("newfile", src, *e.data)
		op("mount", src, r+e.path, "", msBind, "")
		op("mount", "", r+e.path, "", msRemount|msBind|msRdonly|msNosuid|msNodev|msNoexec, "")
		op("unlink", src)
	}
	op("mount", "", r, "", msRemount|msBind|msRdonly|msNosuid|msNodev, "")
	step("mounted")
	op("chdir", r)
	op("pivot")
	op("chdir", "/")
	op("trychdir", req.Workspace)
	step("pivoted")
	op("caps")
	op("nonewprivs")
	if ll := req.Landlock; ll != nil {
		op("landlock", ll.Handled, ll.Scoped, ll.AttrSize)
		for _, rule := range ll.Rules {
			p, ok1 := rule[0].(string)
			access, ok2 := rule[1].(uint64)
			mask, ok3 := rule[2].(uint64)
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("a Landlock rule of types %T, %T, %T", rule[0], rule[1], rule[2])
			}
			op("rule", p, access, mask)
		}
		op("restrict")
	}
	for _, rl := range req.Rlimits {
		op("rlimit", int(rl[0]), rl[1])
	}
	op("seccomp")
	step("confined")
	if req.Network {
		op("await", fd(0), "n", 124)
	}
	var b strings.Builder
	for _, t := range out {
		if strings.IndexByte(t, 0) >= 0 {
			return nil, errors.New("a NUL byte in the sandbox's set-up")
		}
		b.WriteString(t)
		b.WriteByte(0)
	}
	return []byte(b.String()), nil
}

// frame is a request as the fork server reads it: the set-up program's
// length (little-endian, 4 bytes), the program, the agent's JSON; nfds
// descriptors go with it. It refuses what the server could not read whole.
func frame(prog, js []byte, nfds int) ([]byte, error) {
	if nfds > maxFDs {
		return nil, fmt.Errorf("the sandbox needs %d descriptors, more than the fork server takes (%d): fewer mounts", nfds, maxFDs)
	}
	msg := make([]byte, 4, 4+len(prog)+len(js))
	binary.LittleEndian.PutUint32(msg, uint32(len(prog)))
	msg = append(append(msg, prog...), js...)
	if len(msg) > maxRequest {
		return nil, fmt.Errorf("the sandbox's request is %d bytes, more than the fork server reads (%d): fewer mounts or environment variables", len(msg), maxRequest)
	}
	return msg, nil
}
