package api

// ErrorCode is the machine-readable class of an error answer. The list
// below is complete; match on it, not on messages.
type ErrorCode string

// The error codes and the HTTP status each comes with.
const (
	CodeInvalid          ErrorCode = "invalid"            // 400
	CodeUnauthorized     ErrorCode = "unauthorized"       // 401
	CodeDenied           ErrorCode = "denied"             // 403: refused by policy; Rule and Reason say why
	CodeNotFound         ErrorCode = "not_found"          // 404
	CodeMethodNotAllowed ErrorCode = "method_not_allowed" // 405
	CodeConflict         ErrorCode = "conflict"           // 409
	CodeTooLarge         ErrorCode = "too_large"          // 413
	CodeLimit            ErrorCode = "limit"              // 429
	CodeInternal         ErrorCode = "internal"           // 500
	CodeUnavailable      ErrorCode = "unavailable"        // 503
)

// Status returns the HTTP status the server answers with for c, 500 for a
// code it does not know.
func (c ErrorCode) Status() int {
	switch c {
	case CodeInvalid:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeDenied:
		return 403
	case CodeNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeConflict:
		return 409
	case CodeTooLarge:
		return 413
	case CodeLimit:
		return 429
	case CodeUnavailable:
		return 503
	}
	return 500
}

// Error is the "error" object of every error answer, and of the "error"
// event of a streamed execution.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// Rule and Reason explain a policy refusal (403 only): the rule that
	// refused the request, such as "shell_rm" or "allowed_host_dirs", and
	// why.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ErrorResponse is the body of every error answer:
// {"error": {"code", "message"}}.
type ErrorResponse struct {
	Error Error `json:"error"`
}
