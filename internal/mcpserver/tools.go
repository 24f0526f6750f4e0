package mcpserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// sandboxIDDoc describes the optional sandbox_id argument of every tool.
const sandboxIDDoc = "sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"

type runPythonIn struct {
	Code      string  `json:"code" jsonschema:"Python source. It runs in the sandbox's persistent session: variables, imports and functions stay defined for later calls. The value of a final expression is returned, as in a notebook."`
	Timeout   float64 `json:"timeout,omitempty" jsonschema:"seconds before the execution is stopped; default: the sandbox's (30 s unless configured); at most 3600"`
	SandboxID string  `json:"sandbox_id,omitempty" jsonschema:"sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"`
}

type runShellIn struct {
	Command   string  `json:"command" jsonschema:"shell command line, run with bash -c in the workspace (/workspace); pipes, redirections and && work"`
	Workdir   string  `json:"workdir,omitempty" jsonschema:"working directory, relative to the workspace; default: the workspace itself"`
	Timeout   float64 `json:"timeout,omitempty" jsonschema:"seconds before the command is stopped; default: the sandbox's (30 s unless configured); at most 3600"`
	SandboxID string  `json:"sandbox_id,omitempty" jsonschema:"sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"`
}

// execOut is the structured result of run_python and run_shell.
type execOut struct {
	SandboxID string `json:"sandbox_id"`
	// ExitCode: 0 on success; Python: 1 on an exception; 124 on timeout;
	// 137 when killed.
	ExitCode        int            `json:"exit_code"`
	Stdout          string         `json:"stdout"`
	Stderr          string         `json:"stderr"`
	ReturnValue     *string        `json:"return_value,omitempty"`
	Error           *api.ExecError `json:"error,omitempty"`
	TimedOut        bool           `json:"timed_out"`
	OOMKilled       bool           `json:"oom_killed"`
	DurationMS      float64        `json:"duration_ms"`
	StdoutTruncated bool           `json:"stdout_truncated,omitempty"`
	StderrTruncated bool           `json:"stderr_truncated,omitempty"`
	// Outputs lists the rich outputs (figures, display()) and their forms;
	// images come as image content.
	Outputs []outputInfo `json:"outputs,omitempty"`
	Notes   []string     `json:"notes,omitempty"`
}

type outputInfo struct {
	Type      string   `json:"type"`
	MIMETypes []string `json:"mime_types"`
}

type writeFileIn struct {
	Path          string  `json:"path" jsonschema:"file path, relative to the workspace (or absolute under /workspace); missing directories are created and an existing file is replaced"`
	Content       *string `json:"content,omitempty" jsonschema:"the file's text (UTF-8); give this or content_base64"`
	ContentBase64 *string `json:"content_base64,omitempty" jsonschema:"the file's bytes, base64-encoded, for binary files; give this or content"`
	SandboxID     string  `json:"sandbox_id,omitempty" jsonschema:"sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"`
}

type writeFileOut struct {
	SandboxID string `json:"sandbox_id"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
}

type readFileIn struct {
	Path      string `json:"path" jsonschema:"file path, relative to the workspace (or absolute under /workspace)"`
	SandboxID string `json:"sandbox_id,omitempty" jsonschema:"sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"`
}

type listFilesIn struct {
	Path      string `json:"path,omitempty" jsonschema:"directory, relative to the workspace (or absolute under /workspace); default: the workspace itself"`
	SandboxID string `json:"sandbox_id,omitempty" jsonschema:"sandbox to use, from create_sandbox or list_sandboxes; omit it to use this session's own sandbox, which is created on first use"`
}

type listFilesOut struct {
	SandboxID string      `json:"sandbox_id"`
	Path      string      `json:"path"`
	Entries   []fileEntry `json:"entries"`
}

type fileEntry struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // file, dir, symlink or other
	Size    int64  `json:"size"`
	Mode    string `json:"mode"`
	ModTime string `json:"mod_time"`
}

type createSandboxIn struct {
	Image                string            `json:"image,omitempty" jsonschema:"container image to run; default: the service's runtime image (Python 3 with numpy, pandas, matplotlib)"`
	MemoryLimit          string            `json:"memory_limit,omitempty" jsonschema:"memory limit such as 512m or 2g; default: the service's"`
	CPULimit             float64           `json:"cpu_limit,omitempty" jsonschema:"CPUs, such as 0.5 or 2; default: the service's"`
	EnableNetwork        *bool             `json:"enable_network,omitempty" jsonschema:"give the sandbox outbound network access; default: no network"`
	IdleTimeout          float64           `json:"idle_timeout,omitempty" jsonschema:"seconds the sandbox may stay unused before it is destroyed; default: the service's"`
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty" jsonschema:"environment variables every execution sees"`
	WorkspacePath        string            `json:"workspace_path,omitempty" jsonschema:"absolute host directory to use as /workspace (the service may restrict which)"`
	AdditionalReadDirs   []string          `json:"additional_read_dirs,omitempty" jsonschema:"absolute host directories to mount read-only at the same path"`
	AdditionalWriteDirs  []string          `json:"additional_write_dirs,omitempty" jsonschema:"absolute host directories to mount read-write at the same path"`
}

type sandboxOut struct {
	SandboxID string `json:"sandbox_id"`
	// Default marks this session's own sandbox.
	Default       bool    `json:"default"`
	Provider      string  `json:"provider"`
	Image         string  `json:"image"`
	MemoryLimit   int64   `json:"memory_limit"`
	CPULimit      float64 `json:"cpu_limit"`
	EnableNetwork bool    `json:"enable_network"`
	Workspace     string  `json:"workspace"`
	CreatedAt     string  `json:"created_at"`
	Executions    int64   `json:"executions"`
}

type listSandboxesOut struct {
	Sandboxes []sandboxOut `json:"sandboxes"`
}

type destroySandboxIn struct {
	SandboxID string `json:"sandbox_id" jsonschema:"sandbox to destroy; its files are deleted with it"`
}

type destroySandboxOut struct {
	SandboxID string `json:"sandbox_id"`
	Status    string `json:"status"`
}

// Limits on what a tool result carries, to spare the model's context:
// output beyond them is cut in the middle, with a note.
const (
	maxStreamText = 32 << 10 // per stream, in text and structured content
	maxReadFile   = 8 << 20  // read_file refuses larger files
	maxReadText   = 256 << 10
)

func (s *Server) addTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:  "run_python",
		Title: "Run Python",
		Description: "Run Python code in the sandbox's persistent session, like a notebook cell: state survives between calls. " +
			"Returns stdout, stderr, the value of a final expression, the traceback of an exception, and each matplotlib figure (or display() of an image) as an image. " +
			"numpy, pandas and matplotlib are installed; there is no network unless the sandbox was created with it.",
		Annotations: &mcp.ToolAnnotations{OpenWorldHint: new(false)},
	}, s.runPython)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "run_shell",
		Title:       "Run a shell command",
		Description: "Run a bash command line in the sandbox, in its workspace (/workspace). Returns stdout, stderr and the exit code; a non-zero exit is reported as an error result.",
		Annotations: &mcp.ToolAnnotations{OpenWorldHint: new(false)},
	}, s.runShell)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "write_file",
		Title:       "Write a file",
		Description: "Create or replace a file in the sandbox's workspace, with text (content) or bytes (content_base64). Python code and shell commands see it at once.",
		Annotations: &mcp.ToolAnnotations{IdempotentHint: true, OpenWorldHint: new(false)},
	}, s.writeFile)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:  "read_file",
		Title: "Read a file",
		Description: fmt.Sprintf("Read a file from the sandbox's workspace: text comes back as text, PNG, JPEG, GIF and WebP images as images, anything else as a binary resource. "+
			"Files over %d MiB are refused; read parts of them with run_shell (head, tail) instead.", maxReadFile>>20),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, s.readFile)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "list_files",
		Title:       "List files",
		Description: "List a directory of the sandbox's workspace: name, type (file, dir, symlink, other), size, permissions and modification time of each entry.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, s.listFiles)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:  "create_sandbox",
		Title: "Create a sandbox",
		Description: "Create another isolated sandbox with its own Python session and workspace, and return its sandbox_id for the other tools. " +
			"Not needed for ordinary work: each session already has a sandbox of its own.",
		Annotations: &mcp.ToolAnnotations{OpenWorldHint: new(false)},
	}, s.createSandbox)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "list_sandboxes",
		Title:       "List sandboxes",
		Description: "List the live sandboxes, marking this session's own (default) sandbox.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, s.listSandboxes)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:  "destroy_sandbox",
		Title: "Destroy a sandbox",
		Description: "Destroy a sandbox, its processes, Python session and workspace files. " +
			"Destroying this session's own sandbox is allowed: the next call makes a fresh one.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: new(true), IdempotentHint: true, OpenWorldHint: new(false)},
	}, s.destroySandbox)
}

func (s *Server) runPython(ctx context.Context, req *mcp.CallToolRequest, in runPythonIn) (*mcp.CallToolResult, execOut, error) {
	return s.execute(ctx, req, in.SandboxID, client.ExecuteOptions{Language: api.Python, Code: in.Code, Timeout: secs(in.Timeout)})
}

func (s *Server) runShell(ctx context.Context, req *mcp.CallToolRequest, in runShellIn) (*mcp.CallToolResult, execOut, error) {
	if strings.TrimSpace(in.Command) == "" {
		return nil, execOut{}, errors.New("command is empty")
	}
	return s.execute(ctx, req, in.SandboxID, client.ExecuteOptions{Language: api.Shell, Code: in.Command, Workdir: in.Workdir, Timeout: secs(in.Timeout)})
}

// secs converts a timeout argument; a negative one is passed on for the
// API to refuse with its own message.
func secs(f float64) time.Duration {
	d := time.Duration(f * float64(time.Second))
	if f != 0 && d == 0 {
		d = time.Nanosecond
	}
	return d
}

func (s *Server) execute(ctx context.Context, req *mcp.CallToolRequest, id string, opts client.ExecuteOptions) (*mcp.CallToolResult, execOut, error) {
	id, err := s.sandboxFor(ctx, req.Session, id)
	if err != nil {
		return nil, execOut{}, toolError(err)
	}
	res, err := s.c.Execute(ctx, id, opts)
	if err != nil {
		return nil, execOut{}, toolError(err)
	}
	out := execOut{
		SandboxID: id, ExitCode: res.ExitCode, ReturnValue: res.ReturnValue, Error: res.Error,
		TimedOut: res.TimedOut, OOMKilled: res.OOMKilled, DurationMS: res.DurationMS, Notes: res.Notes,
	}
	var cut bool
	out.Stdout, cut = clip(res.Stdout, maxStreamText)
	out.StdoutTruncated = cut || res.StdoutTruncated
	out.Stderr, cut = clip(res.Stderr, maxStreamText)
	out.StderrTruncated = cut || res.StderrTruncated
	content := []mcp.Content{&mcp.TextContent{Text: execText(opts.Language, out, res)}}
	for _, o := range res.Outputs {
		out.Outputs = append(out.Outputs, outputInfo{Type: o.Type, MIMETypes: slices.Sorted(maps.Keys(o.Data))})
		content = append(content, outputContent(o)...)
	}
	return &mcp.CallToolResult{Content: content, IsError: !res.Success}, out, nil
}

// outputContent turns a rich output into MCP content: an image when it
// has one, else its plain-text form (a model reads text; HTML would only
// cost context).
func outputContent(o api.Output) []mcp.Content {
	for _, mt := range []string{"image/png", "image/jpeg", "image/gif", "image/webp"} {
		if b64, ok := o.Data[mt]; ok {
			if data, err := base64.StdEncoding.DecodeString(b64); err == nil {
				return []mcp.Content{&mcp.ImageContent{Data: data, MIMEType: mt}}
			}
		}
	}
	for _, mt := range []string{"text/markdown", "text/plain", "image/svg+xml", "text/html", "application/json", "text/latex"} {
		if text, ok := o.Data[mt]; ok {
			text, _ = clip(text, maxStreamText)
			return []mcp.Content{&mcp.TextContent{Text: text}}
		}
	}
	return nil
}

// execText is the result as a model reads it: output first, then what
// went wrong.
func execText(lang api.Language, out execOut, res api.ExecResult) string {
	var b strings.Builder
	section := func(title, text string, truncated bool) {
		if text == "" && !truncated {
			return
		}
		if title != "" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(title + "\n")
		}
		b.WriteString(text)
		if text != "" && !strings.HasSuffix(text, "\n") {
			b.WriteString("\n")
		}
		if truncated {
			b.WriteString("[output truncated]\n")
		}
	}
	section("", out.Stdout, out.StdoutTruncated)
	stderrTitle := "[stderr]"
	if lang == api.Python && res.Error != nil {
		stderrTitle = "" // the traceback, which Python wrote there
	}
	section(stderrTitle, out.Stderr, out.StderrTruncated)
	if res.Error != nil && !strings.Contains(out.Stderr, res.Error.Name) {
		section("", res.Error.Traceback, false)
	}
	if out.ReturnValue != nil {
		section("", *out.ReturnValue, false)
	}
	switch {
	case res.TimedOut:
		section("", fmt.Sprintf("[timed out after %.1f s: the execution was stopped]", res.DurationMS/1000), false)
	case res.OOMKilled:
		section("", "[killed: the sandbox ran out of memory]", false)
	case lang == api.Shell && res.ExitCode != 0:
		section("", fmt.Sprintf("[exit code %d]", res.ExitCode), false)
	case lang == api.Python && res.ExitCode != 0 && res.Error == nil:
		section("", fmt.Sprintf("[exited with code %d]", res.ExitCode), false)
	}
	for _, n := range res.Notes {
		section("", "[note] "+n, false)
	}
	if b.Len() == 0 {
		return "(no output)"
	}
	return b.String()
}

// clip keeps the start and end of s when it is longer than max bytes.
func clip(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	head, tail := max*3/4, max/4
	return strings.ToValidUTF8(s[:head], "") +
		fmt.Sprintf("\n... [%d bytes left out] ...\n", len(s)-head-tail) +
		strings.ToValidUTF8(s[len(s)-tail:], ""), true
}

func (s *Server) writeFile(ctx context.Context, req *mcp.CallToolRequest, in writeFileIn) (*mcp.CallToolResult, writeFileOut, error) {
	var data []byte
	switch {
	case in.Content != nil && in.ContentBase64 != nil:
		return nil, writeFileOut{}, errors.New("give either content or content_base64, not both")
	case in.Content != nil:
		data = []byte(*in.Content)
	case in.ContentBase64 != nil:
		var err error
		if data, err = base64.StdEncoding.DecodeString(*in.ContentBase64); err != nil {
			return nil, writeFileOut{}, fmt.Errorf("content_base64 is not valid base64: %v", err)
		}
	default:
		return nil, writeFileOut{}, errors.New("content or content_base64 is required (an empty string makes an empty file)")
	}
	if in.Path == "" {
		return nil, writeFileOut{}, errors.New("path is empty")
	}
	id, err := s.sandboxFor(ctx, req.Session, in.SandboxID)
	if err != nil {
		return nil, writeFileOut{}, toolError(err)
	}
	up, err := s.c.Upload(ctx, id, in.Path, strings.NewReader(string(data)))
	if err != nil {
		return nil, writeFileOut{}, toolError(err)
	}
	return nil, writeFileOut{SandboxID: id, Path: up.Path, Size: up.Size}, nil
}

func (s *Server) listFiles(ctx context.Context, req *mcp.CallToolRequest, in listFilesIn) (*mcp.CallToolResult, listFilesOut, error) {
	id, err := s.sandboxFor(ctx, req.Session, in.SandboxID)
	if err != nil {
		return nil, listFilesOut{}, toolError(err)
	}
	list, err := s.c.ListFiles(ctx, id, in.Path)
	if err != nil {
		return nil, listFilesOut{}, toolError(err)
	}
	out := listFilesOut{SandboxID: id, Path: list.Path, Entries: make([]fileEntry, len(list.Entries))}
	for i, e := range list.Entries {
		mode, _ := e.Mode.MarshalJSON()
		out.Entries[i] = fileEntry{Name: e.Name, Type: e.Type, Size: e.Size, Mode: strings.Trim(string(mode), `"`),
			ModTime: e.ModTime.UTC().Format(time.RFC3339)}
	}
	return nil, out, nil
}

func (s *Server) createSandbox(ctx context.Context, req *mcp.CallToolRequest, in createSandboxIn) (*mcp.CallToolResult, sandboxOut, error) {
	sb, err := s.c.Create(ctx, client.CreateOptions{
		Image: in.Image, MemoryLimit: in.MemoryLimit, CPULimit: in.CPULimit, EnableNetwork: in.EnableNetwork,
		IdleTimeout: secs(in.IdleTimeout), EnvironmentVariables: in.EnvironmentVariables,
		WorkspacePath: in.WorkspacePath, AdditionalReadDirs: in.AdditionalReadDirs, AdditionalWriteDirs: in.AdditionalWriteDirs,
	})
	if err != nil {
		return nil, sandboxOut{}, toolError(err)
	}
	return nil, sandboxOf(sb, false), nil
}

func (s *Server) listSandboxes(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, listSandboxesOut, error) {
	list, err := s.c.List(ctx)
	if err != nil {
		return nil, listSandboxesOut{}, toolError(err)
	}
	def := s.defaultOf(req.Session)
	out := listSandboxesOut{Sandboxes: make([]sandboxOut, len(list))}
	for i, sb := range list {
		out.Sandboxes[i] = sandboxOf(sb, sb.ID == def)
	}
	return nil, out, nil
}

func sandboxOf(sb api.Sandbox, def bool) sandboxOut {
	return sandboxOut{
		SandboxID: sb.ID, Default: def, Provider: sb.Provider, Image: sb.Image,
		MemoryLimit: sb.Spec.MemoryLimit, CPULimit: sb.Spec.CPULimit, EnableNetwork: sb.Spec.EnableNetwork,
		Workspace: sb.Spec.WorkspacePath, CreatedAt: sb.CreatedAt.UTC().Format(time.RFC3339), Executions: sb.Executions,
	}
}

func (s *Server) destroySandbox(ctx context.Context, req *mcp.CallToolRequest, in destroySandboxIn) (*mcp.CallToolResult, destroySandboxOut, error) {
	if in.SandboxID == "" {
		return nil, destroySandboxOut{}, errors.New("sandbox_id is required")
	}
	if err := s.c.Delete(context.WithoutCancel(ctx), in.SandboxID); err != nil {
		return nil, destroySandboxOut{}, toolError(err)
	}
	s.forgetDefault(req.Session, in.SandboxID)
	return nil, destroySandboxOut{SandboxID: in.SandboxID, Status: "destroyed"}, nil
}

// toolError words an API error for the model: the server's message, and
// for a policy refusal the rule and reason. It becomes a tool result with
// isError set, not a protocol error.
func toolError(err error) error {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return err
	}
	msg := ae.Message
	if ae.Code == api.CodeDenied && ae.Reason != "" && !strings.Contains(msg, ae.Reason) {
		msg += " (" + ae.Reason + ")"
	}
	if ae.Code == "" {
		return fmt.Errorf("the Warden service answered HTTP %d: %s", ae.StatusCode, msg)
	}
	return fmt.Errorf("%s: %s", ae.Code, msg)
}

func (s *Server) readFile(ctx context.Context, req *mcp.CallToolRequest, in readFileIn) (*mcp.CallToolResult, any, error) {
	if in.Path == "" {
		return nil, nil, errors.New("path is empty")
	}
	id, err := s.sandboxFor(ctx, req.Session, in.SandboxID)
	if err != nil {
		return nil, nil, toolError(err)
	}
	rc, err := s.c.Download(ctx, id, in.Path)
	if err != nil {
		return nil, nil, toolError(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxReadFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %v", in.Path, err)
	}
	if len(data) > maxReadFile {
		return nil, nil, fmt.Errorf("%s is larger than %d MiB, more than read_file returns; read parts of it with run_shell (head, tail, sed -n) or run_python", in.Path, maxReadFile>>20)
	}
	mt := http.DetectContentType(data)
	switch {
	case strings.HasPrefix(mt, "image/png"), strings.HasPrefix(mt, "image/jpeg"), strings.HasPrefix(mt, "image/gif"), strings.HasPrefix(mt, "image/webp"):
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{Data: data, MIMEType: strings.TrimSpace(strings.Split(mt, ";")[0])}}}, nil, nil
	case utf8.Valid(data):
		text, cut := clip(string(data), maxReadText)
		if cut {
			text += fmt.Sprintf("\n[%s is %d bytes; the middle was left out: read parts of it with run_shell]\n", in.Path, len(data))
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	}
	uri := (&url.URL{Scheme: "sandbox", Host: id, Path: "/" + strings.TrimPrefix(in.Path, "/")}).String()
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.EmbeddedResource{
		Resource: &mcp.ResourceContents{URI: uri, MIMEType: strings.TrimSpace(strings.Split(mt, ";")[0]), Blob: data},
	}}}, nil, nil
}
