package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// RunAll runs jobs with at most parallel of them at once (at least one),
// starting them in order, and returns their results in the order of jobs.
// Each result is also in its run's result.json; a job that could not run
// has its reason in Result.Error. When ctx is cancelled, running jobs are
// stopped (and recorded) and jobs not yet started are reported as not
// started. RunAll returns when every started run has finished and its
// sandbox is gone.
func (r *Runner) RunAll(ctx context.Context, jobs []Job, parallel int) []Result {
	parallel = max(parallel, 1)
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			for k := i; k < len(jobs); k++ {
				results[k] = notStarted(jobs[k], fmt.Errorf("not started: %w", err))
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if job.OnStart != nil {
				job.OnStart()
			}
			results[i], _ = r.Run(ctx, job)
			if job.OnDone != nil {
				job.OnDone(results[i])
			}
		})
	}
	wg.Wait()
	return results
}

func notStarted(job Job, err error) Result {
	res := Result{
		Script:    job.Script,
		Args:      slices.Clone(job.Args),
		Framework: job.Framework,
		Image:     job.Image,
		ExitCode:  -1,
		Error:     err.Error(),
		StartedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if abs, aerr := filepath.Abs(job.Script); aerr == nil {
		res.Script = abs
	}
	if res.Args == nil {
		res.Args = []string{}
	}
	return res
}
