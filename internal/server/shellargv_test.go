package server

import (
	"os/exec"
	"strings"
	"testing"
)

func TestShellLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		argv  []string
		want  string
		shell bool
	}{
		{[]string{"echo", "hello world", "|", "wc", "-w"}, `echo 'hello world' | wc -w`, true},
		{[]string{"ls", "-la"}, "", false},
		{[]string{"python3", "-c", "print(1)"}, "", false},
		{[]string{"bash", "-c", "echo $HOME | wc"}, "", false},
		{[]string{"cd", "/tmp", "&&", "pwd"}, "cd /tmp && pwd", true},
		{[]string{"A=1 2", "env"}, `A='1 2' env`, true},
		{[]string{"A=x y", "printenv", "A"}, `A='x y' printenv A`, true},
		{[]string{"echo", "$HOME", ">", "out.txt"}, `echo '$HOME' > out.txt`, true},
		{[]string{"echo", "it's", ";", "echo", "*.py"}, `echo 'it'\''s' ; echo '*.py'`, true},
		{[]string{"cat", "f", "2>&1", "|", "grep", "x=1"}, `cat f 2>&1 | grep x=1`, true},
	}
	for _, c := range cases {
		got, ok := shellLine(c.argv)
		if ok != c.shell || got != c.want {
			t.Errorf("shellLine(%q) = %q, %v; want %q, %v", c.argv, got, ok, c.want, c.shell)
		}
	}
}

// TestShellLineRunsInBash checks the lines with the real bash: the pipe of
// TinyAgent's own test counts two words, and quoted tokens stay literal.
func TestShellLineRunsInBash(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"echo", "hello world", "|", "wc", "-w"}, "2"},
		{[]string{"echo", "$HOME", "&&", "echo", "`id`"}, "$HOME\n`id`"},
		{[]string{"A=x y", "printenv", "A"}, "x y"},
		{[]string{"echo", "a'b", ";", "echo", "c"}, "a'b\nc"},
	} {
		line, ok := shellLine(c.argv)
		if !ok {
			t.Fatalf("shellLine(%q) needs no shell", c.argv)
		}
		out, err := exec.Command("bash", "-c", line).Output()
		if err != nil {
			t.Fatalf("bash -c %q: %v", line, err)
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("bash -c %q = %q, want %q", line, got, c.want)
		}
	}
}
