// Package owner identifies a Warden process across restarts, so that what
// it created (containers, workspaces, processes) can be recognised later as
// orphaned once that process is gone: hostname, pid and the process's start
// time, so a recycled pid is not mistaken for the original.
package owner

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ID is this process's identity: "<hostname>/<pid>/<start time>".
func ID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), StartTime(os.Getpid()))
}

// Alive reports whether the process named by id still runs. ok is false
// when id is not of the form ID produces; callers decide what a malformed
// id means. Owners on other hosts are reported alive: that cannot be told
// from here.
func Alive(id string) (alive, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return false, false
	}
	if host, _ := os.Hostname(); parts[0] != host {
		return true, true
	}
	pid, err1 := strconv.Atoi(parts[1])
	st, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return false, false
	}
	return st != 0 && StartTime(pid) == st, true
}

// StartTime is the start time of pid in clock ticks since boot, 0 if pid
// does not exist.
func StartTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// Fields after the command: state is field 3 of stat, starttime 22.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// Gone reports whether the process named by id, a Warden process of this
// host, no longer runs, so that what it left may be removed. A malformed
// id, or one of another host, is never gone: whatever carries it is left
// alone.
func Gone(id string) bool {
	alive, ok := Alive(id)
	return ok && !alive
}

// Tag is this process's ID in a form fit for a file or cgroup name; see
// [TagOf].
func Tag() string { return TagOf(ID()) }

// TagOf returns an ID as "<pid>-<start time>-<hostname>", which holds no
// slash, so it can end the name of a directory or cgroup a Warden process
// creates: whoever finds that name later tells from it alone whether its
// creator still runs. [ParseTag] inverts it.
func TagOf(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return ""
	}
	return parts[1] + "-" + parts[2] + "-" + parts[0]
}

// ParseTag returns the ID a tag made by [TagOf] stands for. ok is false
// for anything TagOf does not make.
func ParseTag(tag string) (id string, ok bool) {
	parts := strings.SplitN(tag, "-", 3)
	if len(parts) != 3 || parts[2] == "" || strings.ContainsAny(parts[2], "/@") {
		return "", false
	}
	for _, num := range parts[:2] {
		if _, err := strconv.ParseUint(num, 10, 64); err != nil {
			return "", false
		}
	}
	return parts[2] + "/" + parts[0] + "/" + parts[1], true
}
