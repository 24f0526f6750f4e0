//go:build !linux

package bench

import "time"

// machineCosts is measured on Linux only.
func machineCosts() (fault, populate, syscall time.Duration) { return 0, 0, 0 }
