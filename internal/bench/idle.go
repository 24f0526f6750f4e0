package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/stats"
)

// CaseIdle keeps [Options.Idle] bubblewrap sandboxes (default 200) idle
// at once, each after `x = 1`, reads the PSS of every process of each
// (the sum is what they cost together), then checks that every one still
// answers `x` with 1. It needs [Options.Bwrap] whose provider exposes its
// sandboxes' host PIDs, and is not among the default cases.
const CaseIdle = "idle"

// IdleBwrapPSS names the idle case's measurement.
const IdleBwrapPSS = "idle_bwrap_pss"

// DefaultIdle is the default of [Options.Idle].
const DefaultIdle = 200

func idleCase(bw sandbox.Provider, k int) caseRunner {
	return func(ctx context.Context, e env, _, _ int) ([]Stats, error) {
		root := providerRoot(bw)
		if root == nil {
			return nil, fmt.Errorf("the bubblewrap provider does not expose its sandboxes' PIDs: %w", sandbox.ErrUnsupported)
		}
		avail0, _ := memAvailable()
		start := time.Now()
		m := memProbe{name: IdleBwrapPSS, kase: CaseIdle, p: bw, spec: e.spec(), root: root, log: e.log}
		m.check = func(ctx context.Context, ids []sandbox.Info) error {
			avail1, _ := memAvailable()
			var errs []error
			for _, info := range ids {
				res, err := bw.Exec(ctx, info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"})
				if err == nil && (res.ReturnValue == nil || *res.ReturnValue != "1") {
					err = fmt.Errorf("x = %v, want 1: %v", res.ReturnValue, checkResult(res))
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("sandbox %s after the idle time: %w", info.ID, err))
				}
			}
			if avail0 > 0 && avail1 > 0 {
				e.addNote(fmt.Sprintf("idle case: %d bubblewrap sandboxes started in %s; MemAvailable fell by %.0f MiB while they were up",
					len(ids), time.Since(start).Round(time.Second), mib(avail0-avail1)))
			}
			return errors.Join(errs...)
		}
		ms, err := m.measure(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", IdleBwrapPSS, err)
		}
		var sum int64
		for _, v := range ms.Samples {
			sum += v
		}
		e.addNote(fmt.Sprintf("idle case: %d sandboxes, PSS %.1f MiB together, median %.1f MiB each; each answered afterwards", ms.N, mib(sum), ms.MedianMiB))
		e.addMem(ms)
		return nil, nil
	}
}

// memAvailable is /proc/meminfo's MemAvailable in bytes (0 and an error
// where there is none).
func memAvailable() (int64, error) {
	v := strings.TrimSuffix(stats.FileField("/proc/meminfo", "MemAvailable", ':'), " kB")
	kb, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("MemAvailable: %w", err)
	}
	return kb << 10, nil
}
