package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// processServer is the API over the local provider (real processes, no
// isolation: the layer under test is the HTTP one), with the public client.
func processServer(t *testing.T) (*client.Client, string, string) {
	t.Helper()
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mgr := session.New(p, session.Options{})
	hs := httptest.NewServer(server.New(server.Options{Manager: mgr, IdleTimeout: -1, MaxBodyBytes: 64 << 10}))
	t.Cleanup(func() {
		hs.Close()
		_ = mgr.Shutdown(context.Background())
		_ = p.Close(context.Background())
	})
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := c.Create(t.Context(), client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c, sb.ID, hs.URL
}

func TestProcessRoutes(t *testing.T) {
	t.Parallel()
	c, id, _ := processServer(t)
	ctx := t.Context()

	// Streamed from the start: start, output, end.
	var mu sync.Mutex
	var types []string
	var out strings.Builder
	end, err := c.StartProcess(ctx, id, client.ProcessOptions{Code: "echo one; echo two >&2; exit 4", Tag: "t",
		OnEvent: func(e api.ProcessEvent) {
			mu.Lock()
			defer mu.Unlock()
			types = append(types, e.Type)
			out.Write(e.Data)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if end.Running || end.ExitCode == nil || *end.ExitCode != 4 || end.Tag != "t" || end.EndedAt == nil {
		t.Fatalf("end = %+v", end)
	}
	if types[0] != "start" || types[len(types)-1] != "end" || out.String() != "one\ntwo\n" && out.String() != "two\none\n" {
		t.Fatalf("events %v, output %q", types, out.String())
	}

	// Background: started, listed, fed, watched, ended.
	p, err := c.StartProcess(ctx, id, client.ProcessOptions{Command: []string{"cat"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Running || p.ExitCode != nil || p.PID <= 0 {
		t.Fatalf("started = %+v", p)
	}
	list, err := c.Processes(ctx, id)
	if err != nil || len(list) != 2 || list[1].PID != p.PID || !list[1].Running {
		t.Fatalf("list = %+v, %v", list, err)
	}
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		_, err := c.WatchProcess(ctx, id, p.PID, func(e api.ProcessEvent) { b.Write(e.Data) })
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- b.String()
	}()
	time.Sleep(200 * time.Millisecond) // let the watch begin
	if err := c.SendInput(ctx, id, p.PID, []byte("fed\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseInput(ctx, id, p.PID); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "fed\n" {
			t.Fatalf("watched %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end")
	}
	if again, err := c.Process(ctx, id, p.PID); err != nil || again.Running || *again.ExitCode != 0 {
		t.Fatalf("after the end = %+v, %v", again, err)
	}
	var replay strings.Builder
	if _, err := c.WatchProcessFromStart(ctx, id, p.PID, func(e api.ProcessEvent) { replay.Write(e.Data) }); err != nil || replay.String() != "fed\n" {
		t.Fatalf("replay = %q, %v", replay.String(), err)
	}

	// Signals and kill.
	p, err = c.StartProcess(ctx, id, client.ProcessOptions{Code: "sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(ctx, id, p.PID, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	end, err = c.WatchProcessFromStart(ctx, id, p.PID, nil)
	if err != nil || end.Signal != 15 {
		t.Fatalf("after SIGTERM = %+v, %v", end, err)
	}
	p, _ = c.StartProcess(ctx, id, client.ProcessOptions{Code: "sleep 300"})
	if err := c.Kill(ctx, id, p.PID); err != nil {
		t.Fatal(err)
	}
	if end, err := c.WatchProcessFromStart(ctx, id, p.PID, nil); err != nil || end.Signal != 9 {
		t.Fatalf("after kill = %+v, %v", end, err)
	}
}

func TestProcessRoutesRefuse(t *testing.T) {
	t.Parallel()
	c, id, url := processServer(t)
	ctx := t.Context()
	p, err := c.StartProcess(ctx, id, client.ProcessOptions{Code: "true"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"neither command nor code", func() error { _, err := c.StartProcess(ctx, id, client.ProcessOptions{}); return err }(), client.ErrInvalid},
		{"missing program", func() error {
			_, err := c.StartProcess(ctx, id, client.ProcessOptions{Command: []string{"/no/such"}})
			return err
		}(), client.ErrInvalid},
		{"negative timeout", func() error {
			_, err := c.StartProcess(ctx, id, client.ProcessOptions{Code: "true", Timeout: -time.Second})
			return err
		}(), client.ErrInvalid},
		{"unknown sandbox", func() error {
			_, err := c.StartProcess(ctx, "sb-0000000000000000", client.ProcessOptions{Code: "true"})
			return err
		}(), client.ErrNotFound},
		{"unknown pid", func() error { _, err := c.Process(ctx, id, 999999); return err }(), client.ErrNotFound},
		{"unknown signal", c.Signal(ctx, id, p.PID, "SIGNOPE"), client.ErrInvalid},
		{"input without stdin", func() error {
			q, _ := c.StartProcess(ctx, id, client.ProcessOptions{Code: "sleep 5"})
			defer c.Kill(ctx, id, q.PID)
			return c.SendInput(ctx, id, q.PID, []byte("x"))
		}(), client.ErrConflict},
		{"input over the body limit", func() error {
			q, _ := c.StartProcess(ctx, id, client.ProcessOptions{Command: []string{"cat"}, Stdin: true})
			defer c.Kill(ctx, id, q.PID)
			return c.SendInput(ctx, id, q.PID, make([]byte, 100<<10))
		}(), client.ErrTooLarge},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	// A bad pid in the path is 400.
	resp, err := http.Get(url + "/sandbox/" + id + "/processes/abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET .../processes/abc = %d, want 400", resp.StatusCode)
	}
}
