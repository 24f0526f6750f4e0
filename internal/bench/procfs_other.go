//go:build !linux

package bench

import (
	"fmt"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

var errNoProcfs = fmt.Errorf("reading processes needs Linux's /proc: %w", sandbox.ErrUnsupported)

func sandboxPIDs(int) ([]int, error)     { return nil, errNoProcfs }
func pss(int) (int64, error)             { return 0, errNoProcfs }
func cpuTime(int) (time.Duration, error) { return 0, errNoProcfs }
func roles([]int) map[int]string         { return nil }
func treeCPU(int) time.Duration          { return 0 }
