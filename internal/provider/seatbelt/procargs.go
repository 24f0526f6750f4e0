package seatbelt

import (
	"bytes"
	"encoding/binary"
)

// procArgsEnv returns the initial environment recorded in buf, the value of
// the macOS sysctl kern.procargs2 for one process: argc as a 32-bit
// little-endian integer (both macOS architectures are little-endian), the
// executable path, NUL padding, argc NUL-terminated arguments, then the
// environment's NUL-terminated entries up to an empty one. ok is false if
// buf is not of that shape.
func procArgsEnv(buf []byte) (env []string, ok bool) {
	if len(buf) < 4 {
		return nil, false
	}
	argc := int(binary.LittleEndian.Uint32(buf))
	rest := buf[4:]
	// The executable path, then its padding.
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return nil, false
	}
	rest = rest[i:]
	for len(rest) > 0 && rest[0] == 0 {
		rest = rest[1:]
	}
	for ; argc > 0; argc-- {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, false
		}
		rest = rest[i+1:]
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, 0)
		if i <= 0 { // the empty entry ending the environment, or no end
			break
		}
		env = append(env, string(rest[:i]))
		rest = rest[i+1:]
	}
	return env, true
}
