package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// pin opens d for the checks and the mount that follow, which then use
// the descriptor's /proc path: a directory swapped for another after the
// checks is not the one mounted. unpin closes it. Where d cannot be
// opened, d is returned as it is, for the checks to say why.
func pin(d hostDir) (_ hostDir, unpin func()) {
	fd, err := unix.Open(d.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return d, func() {}
	}
	at := fmt.Sprintf("/proc/self/fd/%d", fd)
	real, err := os.Readlink(at)
	if err != nil {
		unix.Close(fd)
		return d, func() {}
	}
	d.at, d.real = at, real
	return d, func() { unix.Close(fd) }
}
