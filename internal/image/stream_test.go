package image

import (
	"strings"
	"testing"
)

func TestDecodeStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantOut string
		wantErr string
	}{
		{
			name: "build output",
			in: `{"stream":"Step 1/6 : FROM warden-base:bookworm\n"}
{"stream":" ---\u003e 1a2b3c\n"}
{"aux":{"ID":"sha256:abc"}}
{"stream":"Successfully tagged warden-runtime:latest\n"}`,
			wantOut: "Step 1/6 : FROM warden-base:bookworm\n ---> 1a2b3c\nSuccessfully tagged warden-runtime:latest\n",
		},
		{
			name: "pull status without progress bars",
			in: `{"status":"Pulling from library/python","id":"3.11-slim"}
{"status":"Pulling fs layer","progressDetail":{},"id":"f1"}
{"status":"Downloading","progressDetail":{"current":1,"total":9},"progress":"[=>   ] 1B/9B","id":"f1"}
{"status":"Pull complete","progressDetail":{},"id":"f1"}
{"status":"Digest: sha256:0123"}`,
			wantOut: "3.11-slim: Pulling from library/python\nf1: Pulling fs layer\nf1: Pull complete\nDigest: sha256:0123\n",
		},
		{
			name: "error detail ends the build",
			in: `{"stream":"Step 2/6 : RUN false\n"}
{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"The command '/bin/sh -c false' returned a non-zero code: 1"}
{"stream":"never printed\n"}`,
			wantOut: "Step 2/6 : RUN false\n",
			wantErr: "The command '/bin/sh -c false' returned a non-zero code: 1",
		},
		{
			name:    "legacy error field only",
			in:      `{"error":"pull access denied for nosuch\n"}`,
			wantErr: "pull access denied for nosuch",
		},
		{
			name:    "truncated stream",
			in:      `{"stream":"Step 1/6`,
			wantErr: "decoding engine message stream",
		},
		{name: "empty stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			err := decodeStream(strings.NewReader(tt.in), &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("decodeStream() error = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("decodeStream() error = %v, want one containing %q", err, tt.wantErr)
			}
			if out.String() != tt.wantOut {
				t.Errorf("decodeStream() wrote %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}
