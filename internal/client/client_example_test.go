package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/warden-sandbox/warden/internal/client"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Example creates a sandbox, runs a command in it with its output streamed,
// and deletes it.
func Example() {
	srv := httptest.NewServer(fakeWarden()) // stands in for `warden serve`
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL, client.WithAPIKey("secret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := c.Create(ctx, client.CreateOptions{MemoryLimit: "256m", EnableNetwork: new(false)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created", info.ID)

	res, err := c.Execute(ctx, info.ID, client.ExecuteOptions{
		Language: sandbox.Shell,
		Command:  []string{"echo", "hello", "world"},
		OnOutput: func(s sandbox.Stream, p []byte) { fmt.Printf("%s: %s", s, p) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exit code", res.ExitCode)

	if err := c.Delete(ctx, info.ID); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.Get(ctx, info.ID)
	fmt.Println("gone:", errors.Is(err, sandbox.ErrNotFound))
	// Output:
	// created sb-0000000000000001
	// stdout: hello world
	// exit code 0
	// gone: true
}

// fakeWarden is a tiny in-memory server for the example: create, get,
// delete, and an execute that only knows echo.
func fakeWarden() http.Handler {
	var mu sync.Mutex
	boxes := map[string]bool{}
	fail := func(w http.ResponseWriter, status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	}
	exists := func(w http.ResponseWriter, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		if !boxes[id] {
			fail(w, 404, "not_found", "sandbox "+id+": not found")
		}
		return boxes[id]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sandbox/create", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := fmt.Sprintf("sb-%016x", len(boxes)+1)
		boxes[id] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"id":%q,"provider":"fake","status":"running"}`, id)
	})
	mux.HandleFunc("GET /sandbox/{id}", func(w http.ResponseWriter, r *http.Request) {
		if exists(w, r.PathValue("id")) {
			fmt.Fprintf(w, `{"id":%q,"provider":"fake","status":"running"}`, r.PathValue("id"))
		}
	})
	mux.HandleFunc("DELETE /sandbox/{id}", func(w http.ResponseWriter, r *http.Request) {
		if exists(w, r.PathValue("id")) {
			mu.Lock()
			delete(boxes, r.PathValue("id"))
			mu.Unlock()
			fmt.Fprintf(w, `{"id":%q,"status":"destroyed"}`, r.PathValue("id"))
		}
	})
	mux.HandleFunc("POST /sandbox/{id}/execute", func(w http.ResponseWriter, r *http.Request) {
		if !exists(w, r.PathValue("id")) {
			return
		}
		var req struct{ Command []string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Command) == 0 || req.Command[0] != "echo" {
			fail(w, 400, "invalid", "this fake only knows echo")
			return
		}
		out := strings.Join(req.Command[1:], " ") + "\n"
		text, _ := json.Marshal(map[string]string{"text": out})
		result, _ := json.Marshal(sandbox.ExecResult{Stdout: []byte(out)})
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: stdout\ndata: %s\n\nevent: result\ndata: %s\n\n", text, result)
	})
	return mux
}
