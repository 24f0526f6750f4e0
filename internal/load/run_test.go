//go:build linux

package load

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestMain lets the test binary serve as the bubblewrap sandboxes' shim.
func TestMain(m *testing.M) {
	bwrap.Init()
	os.Exit(m.Run())
}

// newService serves Warden's API in process over a real bubblewrap
// provider, with a small output limit so that the large outputs stay
// cheap.
func newService(t *testing.T) string {
	t.Helper()
	testutil.RequireBwrap(t)
	p, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	metrics := server.NewMetrics()
	mgr := session.New(p, session.Options{Observer: metrics})
	defaults := sandbox.Spec{OutputLimit: 64 << 10}.WithDefaults()
	srv := httptest.NewServer(server.New(server.Options{Manager: mgr, Defaults: defaults, IdleTimeout: -1, Metrics: metrics, Version: "test"}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := mgr.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		_ = p.Close(ctx)
	})
	return srv.URL
}

// Run against a real server: every execution checks out, in every fault
// mode that needs no server process of its own, and the faults happen as
// often as the schedule says.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bubblewrap sandboxes")
	}
	url := newService(t)
	const clients, executions = 3, 26
	for _, c := range []struct {
		fault    Fault
		injected int
		kinds    []string
	}{
		{FaultNone, 0, mixKinds()},
		// Executions 9 and 19 of each client are cut.
		{FaultDisconnect, clients * 2, []string{KindState, KindCut}},
		// Execution 12 of each client kills: the agent for client 0 and 2,
		// the interpreter for client 1.
		{FaultKillAgent, clients, []string{KindKillAgent, KindKillWorker, KindMarker}},
	} {
		t.Run(string(c.fault), func(t *testing.T) {
			var log strings.Builder
			rep, err := Run(t.Context(), Options{URL: url, Clients: clients, Executions: executions, Fault: c.fault, Interval: 200 * time.Millisecond, Log: &log})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			t.Logf("\n%s", rep.Text())
			if !rep.OK() || rep.Executions != clients*executions {
				t.Errorf("%d executions, %d errors, %d skipped; want %d, 0, 0", rep.Executions, rep.Errors, rep.Skipped, clients*executions)
			}
			for _, k := range c.kinds {
				if !hasKind(rep, k) {
					t.Errorf("no %s executions in %+v", k, rep.Kinds)
				}
			}
			if c.fault != FaultNone && (rep.Faults == nil || rep.Faults.Injected != c.injected || rep.Faults.Recovery == nil) {
				t.Errorf("faults = %+v, want %d injected and recoveries", rep.Faults, c.injected)
			}
			if rep.Before == nil || rep.After == nil || rep.Before.Values[MetricGoroutines] == 0 || rep.After.Values[MetricSandboxes] != 0 {
				t.Errorf("before %+v, after %+v", rep.Before, rep.After)
			}
			if rep.Provider != "bubblewrap" || rep.ServerVersion != "test" || rep.Throughput <= 0 || !strings.Contains(log.String(), "executions") {
				t.Errorf("provider %q, version %q, throughput %v, progress %q", rep.Provider, rep.ServerVersion, rep.Throughput, log.String())
			}
		})
	}
}

// A soak runs for its duration, each client replacing its sandbox every
// Executions executions.
func TestRunSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bubblewrap sandboxes")
	}
	url := newService(t)
	start := time.Now()
	rep, err := Run(t.Context(), Options{URL: url, Clients: 2, Executions: 6, Soak: 8 * time.Second, Interval: time.Second})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("\n%s", rep.Text())
	if !rep.OK() || rep.Executions < 12 || time.Since(start) < 8*time.Second || rep.SoakSeconds != 8 {
		t.Errorf("%d executions, %d errors in %s", rep.Executions, rep.Errors, time.Since(start))
	}
	var creates, deletes int
	for _, k := range rep.Kinds {
		switch k.Kind {
		case KindCreate:
			creates = k.N
		case KindDelete:
			deletes = k.N
		}
	}
	if creates < 4 || deletes != creates {
		t.Errorf("%d creates and %d deletes, want a new sandbox every 6 executions, each deleted", creates, deletes)
	}
	if len(rep.Samples) < 4 || len(rep.Drift) == 0 {
		t.Errorf("%d samples, drift %+v", len(rep.Samples), rep.Drift)
	}
}

func hasKind(rep *Report, kind string) bool {
	for _, k := range rep.Kinds {
		if k.Kind == kind && k.N > 0 {
			return true
		}
	}
	return false
}

func TestRunRefuses(t *testing.T) {
	t.Parallel()
	if _, err := Run(t.Context(), Options{URL: "http://127.0.0.1:1", Fault: FaultKillServer}); err == nil || !strings.Contains(err.Error(), "kill-server") {
		t.Errorf("kill-server without a server = %v", err)
	}
	if _, err := Run(t.Context(), Options{URL: "http://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "/health") {
		t.Errorf("no server = %v", err)
	}
	if _, err := Run(t.Context(), Options{URL: "http://127.0.0.1:1", Fault: "sometimes"}); err == nil {
		t.Error("an unknown fault was accepted")
	}
}
