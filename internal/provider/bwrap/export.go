package bwrap

import "runtime"

// SeccompProgram returns the seccomp filter every bubblewrap sandbox gets,
// encoded as the kernel's struct sock_filter array for this architecture,
// so that another provider (the fork server) can apply exactly the same
// policy.
func SeccompProgram() ([]byte, error) { return seccompProgram(runtime.GOARCH) }
