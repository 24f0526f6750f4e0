package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// streamMessage is one record of the JSON message stream that the Engine
// sends for build, pull and import requests.
type streamMessage struct {
	Stream string `json:"stream"`
	Status string `json:"status"`
	ID     string `json:"id"`
	// Progress is a rendered progress bar; records that carry one are
	// skipped, the status change before and after them is enough.
	Progress string `json:"progress"`
	// Error is the legacy form of ErrorDetail; daemons send both.
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// decodeStream copies the human-readable part of a JSON message stream to w
// until EOF. Build output ("stream") is copied as is; status lines are
// written once per change, without progress-bar updates. An error message in
// the stream ends decoding and is returned: the daemon reports a failed build
// or pull that way, with a 200 status.
func decodeStream(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decoding engine message stream: %w", err)
		}
		if msg := m.errorMessage(); msg != "" {
			return errors.New(strings.TrimSpace(msg))
		}
		switch {
		case m.Stream != "":
			io.WriteString(w, m.Stream)
		case m.Status != "" && m.Progress == "":
			if m.ID != "" {
				fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(w, m.Status)
			}
		}
	}
}

func (m streamMessage) errorMessage() string {
	if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
		return m.ErrorDetail.Message
	}
	return m.Error
}

// layerTracker passes a classic build's output to w and remembers the
// images the builder made (its " ---> ID" lines): last, the last of
// them, and made, those this build made itself, in order: not a FROM's
// image, nor a step's taken from the cache (" ---> Using cache"), which
// other builds and images share.
type layerTracker struct {
	w      io.Writer
	last   string
	made   []string
	shared bool // the next image is a FROM's or the cache's
}

var reLayer = regexp.MustCompile(`(?m)^(?:Step \d+/\d+ : (FROM)\b.*| ---> (Using cache|[0-9a-f]{12,64}))\s*$`)

func (t *layerTracker) Write(p []byte) (int, error) {
	for _, m := range reLayer.FindAllSubmatch(p, -1) {
		switch {
		case len(m[1]) > 0, string(m[2]) == "Using cache":
			t.shared = true
		default:
			t.last = string(m[2])
			if !t.shared {
				t.made = append(t.made, t.last)
			}
			t.shared = false
		}
	}
	return t.w.Write(p)
}

// imageRemover is the optional ability to remove images; the Docker
// client has it.
type imageRemover interface {
	ImageRemove(ctx context.Context, image string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// removeUntagged removes the images a failed build made (ids, in the
// order made), newest first, each only if nothing names it: what the
// build leaves. What it did not make stays: the image it started from,
// and the layers it took from the cache, which a build running beside
// it may be using (pruning a failed build's untagged parents once removed
// them under another). Errors are ignored: the build's own error is the
// one to report.
func removeUntagged(ctx context.Context, api API, ids []string) {
	rm, ok := api.(imageRemover)
	if len(ids) == 0 || !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for i := len(ids) - 1; i >= 0; i-- {
		ins, err := api.ImageInspect(ctx, ids[i])
		if err != nil || len(ins.RepoTags) > 0 {
			continue
		}
		_, _ = rm.ImageRemove(ctx, ids[i], client.ImageRemoveOptions{})
	}
}
