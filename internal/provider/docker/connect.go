package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// NewClient returns a client of the daemon at host ("" = DOCKER_HOST, or
// the platform's default socket), honouring DOCKER_API_VERSION,
// DOCKER_CERT_PATH and DOCKER_TLS_VERIFY as the docker CLI does. It does
// not connect; the caller closes it.
func NewClient(host string) (*client.Client, error) { return newClient(host) }

func newClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	return client.New(opts...)
}

// pingResult is the outcome of one ping.
type pingResult struct {
	failure    Failure // FailureNone when err is nil
	err        error
	apiVersion string // as reported by the daemon, when it answered
}

// connect pings the daemon behind c, each ping bounded by timeout, until
// one succeeds: at most retries+1 times, waiting backoff before the
// second and twice as long before each further one (see DetectOptions).
// It stops at once when ctx ends, and after a daemon whose API is too old
// (retrying cannot change that). It returns how many pings it made and
// the last one's outcome. Detect and New both reach the daemon this way.
func connect(ctx context.Context, c *client.Client, timeout time.Duration, retries int, backoff time.Duration) (attempts int, last pingResult) {
	for attempt := 1; attempt <= retries+1; attempt++ {
		if attempt > 1 && !detectSleep(ctx, detectBackoff(backoff, attempt-1)) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		attempts++
		last = ping(ctx, c, timeout)
		if last.err == nil || last.failure == FailureTooOld {
			break
		}
	}
	return attempts, last
}

// ping makes one attempt, bounded by timeout.
func ping(ctx context.Context, c *client.Client, timeout time.Duration) pingResult {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := c.Ping(actx, client.PingOptions{NegotiateAPIVersion: true})
	switch {
	case err == nil:
		return pingResult{apiVersion: res.APIVersion}
	case ctx.Err() != nil:
		return pingResult{failure: FailureInterrupted, err: context.Cause(ctx)}
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return pingResult{failure: FailureUnreachable, err: fmt.Errorf("no answer within %v", timeout)}
	case res.APIVersion != "" && versions.LessThan(res.APIVersion, client.MinAPIVersion):
		return pingResult{
			failure:    FailureTooOld,
			err:        fmt.Errorf("its API version %s is older than the minimum %s warden supports", res.APIVersion, client.MinAPIVersion),
			apiVersion: res.APIVersion,
		}
	case client.IsErrConnectionFailed(err):
		return pingResult{failure: FailureUnreachable, err: fmt.Errorf("%v", err)}
	default:
		return pingResult{failure: FailureOther, err: fmt.Errorf("%v", err)}
	}
}

// detectBackoff returns the wait before retry n (n >= 1): base doubled n-1
// times, capped at detectMaxBackoff or base, whichever is larger.
func detectBackoff(base time.Duration, n int) time.Duration {
	limit := max(base, detectMaxBackoff)
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// detectSleep waits for d or until ctx ends, reporting whether the wait
// completed.
func detectSleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
