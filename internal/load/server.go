package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
)

// ServerOptions describe the `warden serve` a [Server] runs.
type ServerOptions struct {
	// Binary is the warden executable.
	Binary string
	// Args follow "serve" on its command line (--provider, ...). The
	// suite adds --host 127.0.0.1 and --port.
	Args []string
	// Env is the server's whole environment.
	Env []string
	// Log, if set, receives a copy of the server's standard error.
	Log io.Writer
	// StartTimeout bounds each start, up to a healthy /health. Default 3
	// minutes: the first start on a machine may extract the runtime
	// image's root filesystem for bubblewrap.
	StartTimeout time.Duration
}

// Server is a `warden serve` process the suite started, on a loopback
// port it keeps across restarts. Its methods are safe for concurrent
// use; Stop must be called once it is no longer needed.
type Server struct {
	opts ServerOptions

	mu   sync.Mutex
	addr string // host:port, fixed by the first start
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and its log is read
	logs *tail
}

// StartServer starts `warden serve` on a free loopback port and returns
// once /health answers.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	s := &Server{opts: opts, logs: &tail{max: 400}}
	if err := s.start(ctx, "0"); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the server's base URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// PID is the process id of the running server, 0 if none.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Logs returns the server's last lines of standard error, across restarts.
func (s *Server) Logs() []string { return s.logs.lines() }

// start runs the server on port and waits for it to be healthy.
func (s *Server) start(ctx context.Context, port string) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	args := append([]string{"serve"}, s.opts.Args...)
	args = append(args, "--host", "127.0.0.1", "--port", port)
	// Not CommandContext: the server must outlive ctx's cancellation long
	// enough to be stopped gracefully, which Stop does.
	cmd := exec.Command(s.opts.Binary, args...)
	cmd.Env = s.opts.Env
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting warden serve: %w", err)
	}
	done := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		// Owned by the process: ends when its stderr closes.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(line)
			if s.opts.Log != nil {
				fmt.Fprintln(s.opts.Log, line)
			}
			// warden serve prints "warden: listening on http://ADDR (...)".
			if _, rest, ok := strings.Cut(line, "listening on http://"); ok {
				a, _, _ := strings.Cut(rest, " ")
				select {
				case addrc <- a:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	var addr string
	select {
	case addr = <-addrc:
	case <-done:
		return fmt.Errorf("warden serve exited before listening: %s", s.lastLogs(20))
	case <-ctx.Done():
		return fmt.Errorf("warden serve did not start listening: %w\n%s", ctx.Err(), s.lastLogs(20))
	}
	if _, p, err := net.SplitHostPort(addr); err != nil || (port != "0" && p != port) {
		return fmt.Errorf("warden serve listens on %q, want port %s", addr, port)
	}
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()
	return waitHealthy(ctx, "http://"+addr, done)
}

// waitHealthy polls /health until it answers 200, the process exits or
// ctx ends.
func waitHealthy(ctx context.Context, url string, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("warden serve exited before /health answered")
		case <-ctx.Done():
			return fmt.Errorf("waiting for /health: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to the server and waits for it to exit.
func (s *Server) Kill() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return errors.New("no server running")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-done
	return nil
}

// Restart starts the server again, on the same address, after Kill.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	_, port, _ := net.SplitHostPort(s.addr)
	s.mu.Unlock()
	return s.start(ctx, port)
}

// Stop sends SIGTERM, which makes the server remove its sandboxes, and
// waits for it to exit; after timeout it sends SIGKILL.
func (s *Server) Stop(timeout time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("warden serve did not stop within %s of SIGTERM; killed", timeout)
	}
}

func (s *Server) lastLogs(n int) string {
	l := s.logs.lines()
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// proc is a process as /proc knows it: its pid and start time, so that a
// recycled pid is not taken for the original.
type proc struct {
	pid   int
	start uint64
	name  string
}

func (p proc) alive() bool { return owner.StartTime(p.pid) == p.start }

// descendants lists the processes below pid, read from /proc (nil where
// there is none).
func descendants(pid int) []proc {
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, t.Name()))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(f)
				if err != nil {
					continue
				}
				name, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
				out = append(out, proc{pid: c, start: owner.StartTime(c), name: strings.TrimSpace(string(name))})
				queue = append(queue, c)
			}
		}
	}
	return out
}

// tail keeps the last max lines written to it.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []string
	total int // lines ever added
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	t.total++
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
}

func (t *tail) lines() []string { return t.since(0) }

// since returns the lines kept that came after the first mark lines.
func (t *tail) since(mark int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	skip := max(len(t.buf)-(t.total-mark), 0)
	return append([]string(nil), t.buf[skip:]...)
}

func (t *tail) mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}
