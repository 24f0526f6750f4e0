package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// writeJSON answers with v as JSON. Encoding happens before the header is
// written, so a value that cannot be encoded still gets a proper 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client went away; nothing left to tell it
	return nil
}

// decodeJSON decodes the request body, one JSON value with no unknown
// fields, into v. It reports whether there was a body at all: an empty body
// is an error unless optional is set. Errors wrap [sandbox.ErrInvalid], or
// [*http.MaxBytesError] for a body over the cap.
func decodeJSON(r *http.Request, v any, optional bool) (found bool, err error) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && optional {
			return false, nil
		}
		return false, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one JSON value in the body")
		}
		return true, decodeError(err)
	}
	return true, nil
}

// decodeError explains a decoding error in the request's own terms (field
// names, byte offsets) rather than Go types.
func decodeError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return fmt.Errorf("request body is larger than %d bytes: %w", mbe.Limit, mbe)
	}
	var msg string
	switch e := err.(type) {
	case *json.SyntaxError:
		msg = fmt.Sprintf("invalid JSON at byte %d: %v", e.Offset, e)
	case *json.UnmarshalTypeError:
		if e.Field == "" {
			msg = fmt.Sprintf("the body must be a JSON object, not %s", e.Value)
		} else {
			msg = fmt.Sprintf("field %s: want %s, got JSON %s", e.Field, jsonType(e.Type.Kind().String()), e.Value)
		}
	case *api.ByteSizeError:
		msg = "memory_limit: " + e.Error() // the one byte size of the requests
	default:
		switch {
		case errors.Is(err, io.EOF):
			msg = "request body is empty; want a JSON object"
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "request body ends inside its JSON value"
		default:
			msg = err.Error() // e.g. json: unknown field "x"
		}
	}
	return fmt.Errorf("decoding request: %s: %w", msg, sandbox.ErrInvalid)
}

// jsonType names a Go kind in JSON terms.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return kind
}
