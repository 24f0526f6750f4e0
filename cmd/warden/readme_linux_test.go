package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// The README's examples are run as printed by TestREADME. A fenced block
// is run when an HTML comment starting with "readme-test" comes right
// before it; the comment's lines of the form "key: value" say how:
//
//	setup: CMD        run with bash in the block's directory first
//	check: CMD        run with bash afterwards; must succeed
//	skip: PREFIX | WHY  do not run the block's commands starting with PREFIX
//	skip: WHY         do not run the block at all (it is still parsed)
//	background: CMD   the block's line CMD runs in the background for the
//	                  whole block, which then runs as one bash script
//	ready: CMD        with background: retried until it succeeds
//	output: CMD       the block is CMD's output: each of its lines but
//	                  "..." must appear in the real output, in order, with
//	                  any number or duration standing for any other
//
// Every other command line must exit 0, or N if its comment says
// "(exit N". A comment line "# TEXT" after a command is output it must
// print (TEXT up to three spaces and a parenthesis). A ```sh block with a
// warden command and no readme-test comment fails the test: every example
// either runs or says why not.

// readmeBlock is one fenced block of the README and its readme-test
// comment.
type readmeBlock struct {
	line   int // of the opening fence, 1-based
	marked bool
	opts   map[string][]string
	lines  []string
}

var readmeKey = regexp.MustCompile(`^(setup|check|skip|background|ready|output):\s*(.*)$`)

func parseReadme(t *testing.T, path string) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	var marker []string // the lines of the last readme-test comment
	inMarker, markerDone := false, false
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "<!-- readme-test"):
			marker, markerDone = nil, false
			rest := strings.TrimPrefix(l, "<!-- readme-test")
			if before, ok := strings.CutSuffix(strings.TrimSpace(rest), "-->"); ok {
				marker, markerDone = []string{before}, true
				continue
			}
			marker, inMarker = []string{rest}, true
		case inMarker:
			if before, ok := strings.CutSuffix(strings.TrimSpace(l), "-->"); ok {
				marker = append(marker, before)
				inMarker, markerDone = false, true
				continue
			}
			marker = append(marker, l)
		case strings.HasPrefix(l, "```"):
			blk := readmeBlock{line: i + 1, marked: markerDone, opts: map[string][]string{}}
			lang := strings.TrimPrefix(l, "```")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				blk.lines = append(blk.lines, lines[i])
			}
			for _, m := range marker {
				if kv := readmeKey.FindStringSubmatch(strings.TrimSpace(m)); kv != nil {
					blk.opts[kv[1]] = append(blk.opts[kv[1]], strings.TrimSpace(kv[2]))
				}
			}
			if markerDone || lang == "sh" {
				blocks = append(blocks, blk)
			}
			marker, markerDone = nil, false
		case strings.TrimSpace(l) != "":
			marker, markerDone = nil, false // a comment counts only right before its block
		}
	}
	return blocks
}

// readmeCmd is one command of a block with what it must do.
type readmeCmd struct {
	text string
	exit int
	want []string // lines of output
}

var exitNote = regexp.MustCompile(`\(exit (\d+)`)

// commands splits a block into commands, joining continued lines.
func (b readmeBlock) commands() []readmeCmd {
	var cmds []readmeCmd
	for i := 0; i < len(b.lines); i++ {
		l := b.lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		if out, ok := strings.CutPrefix(l, "# "); ok {
			if len(cmds) > 0 {
				c := &cmds[len(cmds)-1]
				text, note, _ := strings.Cut(out, "   (")
				c.want = append(c.want, strings.TrimSpace(text))
				if m := exitNote.FindStringSubmatch("(" + note); m != nil {
					c.exit, _ = strconv.Atoi(m[1])
				}
			}
			continue
		}
		for strings.HasSuffix(l, "\\") && i+1 < len(b.lines) {
			i++
			l += "\n" + b.lines[i]
		}
		c := readmeCmd{text: l}
		if m := exitNote.FindStringSubmatch(l); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
		}
		cmds = append(cmds, c)
	}
	return cmds
}

func hasWarden(lines []string) bool {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") && strings.Contains(" "+l, " warden ") {
			return true
		}
	}
	return false
}

// TestREADME runs the README's examples as printed against the built
// binary, as root, with bubblewrap and Docker here (see the comment at
// the top of this file).
func TestREADME(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	testutil.RequireRoot(t)
	blocks := parseReadme(t, "../../README.md")
	bin := filepath.Dir(wardenBinary(t))
	if filepath.Base(wardenBinary(t)) != "warden" {
		bin = t.TempDir()
		if err := os.Symlink(wardenBinary(t), filepath.Join(bin, "warden")); err != nil {
			t.Fatal(err)
		}
	}
	root := testutil.SharedDir(t)
	t.Cleanup(func() { unmountAll(filepath.Join(root, ".idmap")) })
	environ := []string{
		"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__IMAGE=" + testutil.Image(), "LANG=C.UTF-8",
	}
	ran := 0
	for _, b := range blocks {
		if !b.marked {
			if hasWarden(b.lines) {
				t.Errorf("README.md:%d: a block with warden commands and no readme-test comment: run it or say why not", b.line)
			}
			continue
		}
		name := fmt.Sprintf("line_%d", b.line)
		if skip := blockSkip(b); skip != "" {
			t.Run(name, func(t *testing.T) { t.Skip(skip) })
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			home := filepath.Join(privateDir(t), "home") // as under /root
			if err := os.Mkdir(home, 0o700); err != nil {
				t.Fatal(err)
			}
			env := append([]string{"HOME=" + home}, environ...)
			sh := func(script string) (int, string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, "bash", "-c", script)
				cmd.Dir, cmd.Env, cmd.Stdin = home, env, nil
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
				cmd.WaitDelay = 10 * time.Second
				out, _ := cmd.CombinedOutput()
				return cmd.ProcessState.ExitCode(), string(out)
			}
			for _, s := range b.opts["setup"] {
				if rc, out := sh(s); rc != 0 {
					t.Fatalf("setup %q: exit %d: %s", s, rc, out)
				}
			}
			switch {
			case len(b.opts["output"]) > 0:
				cmdline := b.opts["output"][0]
				rc, out := sh(cmdline)
				if rc != 0 {
					t.Errorf("%s: exit %d: %s", cmdline, rc, out)
				}
				if missing := missingLines(b.lines, out); len(missing) > 0 {
					t.Errorf("%s: the README shows lines it does not print:\n%s\nreal output:\n%s", cmdline, strings.Join(missing, "\n"), out)
				}
			case len(b.opts["background"]) > 0:
				runScript(t, b, home, env, sh)
			default:
				for _, c := range b.commands() {
					if why := lineSkip(b, c.text); why != "" {
						t.Logf("not run: %s (%s)", c.text, why)
						continue
					}
					rc, out := sh(c.text)
					if rc != c.exit {
						t.Errorf("%s\n= exit %d, want %d; output:\n%s", c.text, rc, c.exit, out)
					}
					for _, w := range c.want {
						if !strings.Contains(out, w) {
							t.Errorf("%s\nprints\n%s\nwithout %q, which the README shows", c.text, out, w)
						}
					}
				}
			}
			for _, s := range b.opts["check"] {
				if rc, out := sh(s); rc != 0 {
					t.Errorf("check %q: exit %d: %s", s, rc, out)
				}
			}
		})
	}
	if ran < 5 {
		t.Errorf("ran %d README blocks, want at least 5: have the readme-test comments gone?", ran)
	}
}

// runScript runs a block with a background command: that command alone
// in the background until the block ends, the rest as one bash script.
func runScript(t *testing.T, b readmeBlock, home string, env []string, sh func(string) (int, string)) {
	bg := b.opts["background"][0]
	if out, err := exec.Command("ss", "-ltn").Output(); err == nil && strings.Contains(string(out), ":8000 ") {
		t.Skip("port 8000 is taken here; the block uses it")
	}
	cmd := exec.Command("bash", "-c", bg)
	cmd.Dir, cmd.Env = home, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	if r := b.opts["ready"]; len(r) > 0 {
		deadline := time.Now().Add(time.Minute)
		for {
			if rc, _ := sh(r[0]); rc == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not ready after a minute: %s", bg, out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var script strings.Builder
	script.WriteString("set -e -o pipefail\n")
	for _, c := range b.commands() {
		if strings.TrimSpace(c.text) != bg && !strings.HasPrefix(c.text, bg+" ") {
			script.WriteString(c.text + "\n")
		}
	}
	if rc, o := sh(script.String()); rc != 0 {
		t.Errorf("the block, with %s in the background, exits %d:\n%s", bg, rc, o)
	}
}

func blockSkip(b readmeBlock) string {
	for _, s := range b.opts["skip"] {
		if !strings.Contains(s, " | ") {
			return s
		}
	}
	return ""
}

func lineSkip(b readmeBlock, cmd string) string {
	for _, s := range b.opts["skip"] {
		if prefix, why, ok := strings.Cut(s, " | "); ok && strings.HasPrefix(cmd, prefix) {
			return why
		}
	}
	return ""
}

// digits matches a number, with a unit of time if it has one: timings
// vary from run to run, 108ms as well as 1.354s.
var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)*(ms|µs|ns|s)?`)

// missingLines returns the lines of want, but "..." and blank ones, that
// are not in got in the same order, numbers (and durations) matching any.
func missingLines(want []string, got string) []string {
	norm := func(s string) string { return digits.ReplaceAllString(strings.TrimRight(s, " "), "0") }
	var real []string
	sc := bufio.NewScanner(strings.NewReader(got))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		real = append(real, norm(sc.Text()))
	}
	var missing []string
	j := 0
	for _, w := range want {
		if strings.TrimSpace(w) == "" || strings.TrimSpace(w) == "..." {
			continue
		}
		n := norm(w)
		k := j
		for k < len(real) && real[k] != n {
			k++
		}
		if k == len(real) {
			missing = append(missing, w)
			continue
		}
		j = k + 1
	}
	return missing
}
