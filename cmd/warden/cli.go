package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// command is one subcommand of warden: what `warden help` lists and what
// `warden help NAME` or `warden NAME --help` prints above the flags.
type command struct {
	name    string
	summary string // one line, for the list of commands
	usage   string // synopsis lines, each starting with "warden NAME"
	help    string // paragraphs after the synopsis; may be ""
	run     func(ctx context.Context, args []string, e env) error
}

// usageError is a mistake in the command line: its message is printed
// with a pointer to the command's help, and warden exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// helpRequest is returned by parseFlags when the command line asks for
// help (-h, --help); run prints the command's help with fs's flags.
type helpRequest struct{ fs *flag.FlagSet }

func (helpRequest) Error() string { return "help requested" }

// newFlagSet returns a flag set that prints nothing: parseFlags turns
// its errors into usage errors and help requests, and run prints them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): (.*)$`)
	reNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// parseFlags parses args with fs. Errors are a [helpRequest] or a
// [usageError] in the command line's own terms: flags spelled --name, an
// unknown flag with the nearest known one.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		return helpRequest{fs: fs}
	}
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = "unknown flag --" + m[1]
		if s := suggest(m[1], names); s != "" {
			msg += "; did you mean --" + s + "?"
		}
	} else if m := reBadValue.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("--%s %q: %s", m[2], m[1], m[3])
	} else if m := reNoValue.FindStringSubmatch(msg); m != nil {
		msg = "--" + m[1] + " needs a value"
	}
	return &usageError{msg: msg}
}

// noArgs fails when a command that takes no arguments is given some.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (this command takes flags only)", fs.Arg(0))
	}
	return nil
}

// printHelp writes c's synopsis, description and fs's flags with their
// defaults.
func printHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n")
	for _, l := range strings.Split(strings.TrimSpace(c.usage), "\n") {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(l))
	}
	fmt.Fprintf(w, "\n%s\n", c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	if fs == nil {
		return
	}
	var rows [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		if v, ok := f.Value.(*settingValue); ok && !v.isBool {
			name = v.placeholder()
		}
		left := "--" + f.Name
		if name != "" {
			if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz") == "" {
				name = strings.ToUpper(name)
			}
			left += " " + name
		}
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" {
			if strings.HasSuffix(use, ")") {
				use = use[:len(use)-1] + ", default " + d + ")"
			} else {
				use += " (default " + d + ")"
			}
		}
		rows = append(rows, [2]string{left, use})
	})
	if len(rows) == 0 {
		return
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	width = min(width, 28)
	fmt.Fprintf(w, "\nFlags:\n")
	for _, r := range rows {
		if len(r[0]) > width {
			fmt.Fprintf(w, "  %s\n  %*s  %s\n", r[0], width, "", r[1])
			continue
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}

// printUsage writes the list of commands.
func printUsage(w io.Writer, cmds []command) {
	fmt.Fprint(w, "warden runs AI-agent code (Python and shell) in isolated sandboxes.\n\nUsage:\n  warden COMMAND [flags]\n\nCommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Settings come from flags, then environment variables (SANDBOX__*, see the
README), then a .env file in the current directory, then defaults.
Run 'warden help COMMAND' for a command's synopsis and flags.
`)
}

// suggest returns the candidate nearest to s, or "" when none is close
// enough to be a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(s, c)
		if strings.HasPrefix(c, s) && len(s) >= 3 {
			d = min(d, 1)
		}
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(1, min(len(s), len(best))/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting a
// swap of two neighbouring letters as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// findCommand returns the command called name.
func findCommand(cmds []command, name string) (command, bool) {
	i := slices.IndexFunc(cmds, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return cmds[i], true
}
