package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/internal/image"
)

// buildProgress shows a long build as one line per phase, with the time
// elapsed since the build began, and keeps everything else (debootstrap,
// apt, the builder's own output) in a log file. On a terminal the current
// phase's line counts the seconds; elsewhere each phase is a plain line
// when it starts. It is an io.Writer for the image package's progress:
// lines starting with [image.PhasePrefix] begin a phase.
//
// Its Write is safe for concurrent use; close stops the ticker it starts
// on a terminal.
type buildProgress struct {
	mu      sync.Mutex
	out     io.Writer // nil with --quiet
	live    bool
	log     *os.File
	begun   time.Time
	phase   string
	phaseAt time.Time
	partial []byte
	tail    []string
	stop    chan struct{}
	done    chan struct{}
}

// tailLines is how many lines of the log a failure shows.
const tailLines = 25

// newBuildProgress writes the log to logPath, or to a new temporary file
// when it is "". out shows the phases; nil shows nothing.
func newBuildProgress(out io.Writer, logPath string) (*buildProgress, error) {
	var f *os.File
	var err error
	if logPath == "" {
		f, err = os.CreateTemp("", "warden-image-build-*.log")
	} else {
		f, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the build log: %w", err)
	}
	p := &buildProgress{out: out, live: out != nil && isTerminal(out), log: f, begun: time.Now()}
	if p.live {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p, nil
}

func (p *buildProgress) tick() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// Write logs b and starts a phase for each phase line in it.
func (p *buildProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.log.Write(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(p.partial[:i]), "\r")
		p.partial = p.partial[i+1:]
		if phase, ok := strings.CutPrefix(line, image.PhasePrefix); ok {
			p.startPhase(strings.TrimSuffix(phase, "..."))
			continue
		}
		if line = strings.TrimSpace(stripANSI(line)); line != "" {
			p.tail = append(p.tail, line)
			if len(p.tail) > tailLines {
				p.tail = p.tail[len(p.tail)-tailLines:]
			}
		}
	}
	return len(b), nil
}

// elapsed renders d as m:ss.
func elapsed(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func (p *buildProgress) startPhase(phase string) {
	p.endPhase()
	p.phase, p.phaseAt = phase, time.Now()
	if p.out == nil {
		return
	}
	if !p.live {
		fmt.Fprintf(p.out, "[%s] %s\n", elapsed(time.Since(p.begun)), phase)
		return
	}
	p.redraw()
}

// redraw rewrites the current phase's line on a terminal.
func (p *buildProgress) redraw() {
	if p.out == nil || !p.live || p.phase == "" {
		return
	}
	fmt.Fprintf(p.out, "\r\033[K[%s] %s ... %s", elapsed(p.phaseAt.Sub(p.begun)), p.phase, elapsed(time.Since(p.phaseAt)))
}

// endPhase ends the current phase's line on a terminal with its duration.
func (p *buildProgress) endPhase() {
	if p.out == nil || !p.live || p.phase == "" {
		return
	}
	fmt.Fprintf(p.out, "\r\033[K[%s] %s (%s)\n", elapsed(p.phaseAt.Sub(p.begun)), p.phase, elapsed(time.Since(p.phaseAt)))
	p.phase = ""
}

// finish ends the display. After a failure it writes, to failOut, the
// last lines of the log and where the whole log is, and keeps the log;
// after a success the log is removed unless keep.
func (p *buildProgress) finish(err error, failOut io.Writer, keep bool) {
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endPhase()
	name := p.log.Name()
	_ = p.log.Close()
	if err == nil {
		if !keep {
			_ = os.Remove(name)
		}
		return
	}
	if len(p.tail) > 0 {
		fmt.Fprintf(failOut, "last lines of the build log:\n")
		for _, l := range p.tail {
			fmt.Fprintf(failOut, "  %s\n", l)
		}
	}
	fmt.Fprintf(failOut, "full build log: %s\n", name)
}

var reANSI = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]`)

// stripANSI removes terminal escape sequences.
func stripANSI(s string) string { return reANSI.ReplaceAllString(s, "") }

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && st.Mode()&os.ModeDevice != 0 && f.Name() != os.DevNull
}
