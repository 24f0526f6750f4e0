package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// outputWriter shows the rich outputs of one cell in a terminal: figures
// and other rich forms go to files in dir (when given), and a display()
// without an image prints its text/plain form, as a console does.
type outputWriter struct {
	dir            string
	cell           int
	stdout, stderr io.Writer
	n              int
}

// outputFiles are the forms written to files, and their extensions, in
// the order tried: every form present is written.
var outputFiles = []struct{ mime, ext string }{
	{"image/png", ".png"}, {"image/jpeg", ".jpg"}, {"image/svg+xml", ".svg"}, {"text/html", ".html"},
	{"text/markdown", ".md"}, {"text/latex", ".tex"}, {"application/json", ".json"},
}

func (w *outputWriter) display(o sandbox.Output) {
	saved := w.save(o)
	_, image := o.Data["image/png"]
	if _, jpeg := o.Data["image/jpeg"]; jpeg {
		image = true
	}
	switch {
	case len(saved) > 0:
		for _, f := range saved {
			fmt.Fprintf(w.stderr, "warden: cell %d output %d saved to %s\n", w.cell, w.n, f)
		}
	case image:
		fmt.Fprintf(w.stderr, "warden: cell %d output %d is an image; give --output-dir DIR to save it\n", w.cell, w.n)
	}
	if o.Type == sandbox.OutputDisplay && !image {
		if text, ok := o.Data["text/plain"]; ok {
			fmt.Fprintln(w.stdout, text)
		}
	}
}

// save writes o's rich forms into w.dir and returns the files written.
func (w *outputWriter) save(o sandbox.Output) []string {
	w.n++
	if w.dir == "" {
		return nil
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		fmt.Fprintln(w.stderr, "warden: --output-dir:", err)
		return nil
	}
	var files []string
	for _, f := range outputFiles {
		content, ok := o.Data[f.mime]
		if !ok {
			continue
		}
		data := []byte(content)
		if sandbox.IsBinaryMIME(f.mime) {
			var err error
			if data, err = base64.StdEncoding.DecodeString(content); err != nil {
				continue // checked on arrival; never happens
			}
		}
		name := filepath.Join(w.dir, fmt.Sprintf("cell%d-output%d%s", w.cell, w.n, f.ext))
		if err := os.WriteFile(name, data, 0o644); err != nil {
			fmt.Fprintln(w.stderr, "warden: --output-dir:", err)
			continue
		}
		files = append(files, name)
	}
	return files
}
