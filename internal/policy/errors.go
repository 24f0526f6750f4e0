package policy

import "github.com/warden-sandbox/warden/internal/sandbox"

// Rules name the check that refused a command or a piece of code. They are
// stable identifiers: the API returns them in 403 bodies and tests match on
// them.
const (
	// RuleShellSyntax: the command does not parse as bash.
	RuleShellSyntax = "shell_syntax"
	// RuleShellEmpty: there is no command to run.
	RuleShellEmpty = "shell_empty"
	// RuleShellCommand: a command that is not in the allowed set.
	RuleShellCommand = "shell_command"
	// RuleShellDynamic: a command name, script or checked argument that is
	// computed at run time and so cannot be checked.
	RuleShellDynamic = "shell_dynamic"
	// RuleShellOperator: a control operator that is not in the allowed set.
	RuleShellOperator = "shell_operator"
	// RuleShellDangerous: a dangerous use of an allowed command, such as
	// find -delete, awk system() or sed -i.
	RuleShellDangerous = "shell_dangerous_use"
	// RuleShellAssignment: an assignment to a variable that changes how
	// commands are found or run (PATH, LD_PRELOAD, BASH_ENV, ...).
	RuleShellAssignment = "shell_assignment"
	// RuleShellArithmetic: an arithmetic context that evaluates a value the
	// checker cannot see; bash runs $(...) hidden in such values.
	RuleShellArithmetic = "shell_arithmetic"
	// RuleShellExpansion: an expansion that evaluates a value as code
	// (${x@P}) or as a variable name (${!x}).
	RuleShellExpansion = "shell_expansion"
	// RuleShellRedirect: a redirection that writes to a system location.
	RuleShellRedirect = "shell_redirect"
	// RuleShellNesting: shells inside shells nested deeper than the checker
	// follows.
	RuleShellNesting = "shell_nesting"
	// RuleShellArgv: an argv element that is a shell operator, although an
	// argv runs without a shell.
	RuleShellArgv = "shell_argv"
	// RuleShellEnv: an environment variable that changes how commands are
	// found or run.
	RuleShellEnv = "shell_env"

	// RulePythonImport: an import of a module that is not allowed, by
	// statement or by name in a string.
	RulePythonImport = "python_import"
	// RulePythonImportCall: a call of __import__.
	RulePythonImportCall = "python_import_call"
	// RulePythonFunction: a use of a dangerous built-in function (exec,
	// eval, compile, open, ...).
	RulePythonFunction = "python_function"
	// RulePythonObfuscation: string manipulation that can hide a name from
	// the checks (chr, ord, base64, .format, ...).
	RulePythonObfuscation = "python_obfuscation"
	// RulePythonIntrospection: an attribute or name that walks to the
	// interpreter's internals (__builtins__, __subclasses__, __globals__,
	// frames, ...).
	RulePythonIntrospection = "python_introspection"
	// RulePythonDynamicAccess: attribute access by a computed name
	// (getattr(x, name)), which the checks cannot follow.
	RulePythonDynamicAccess = "python_dynamic_access"
)

// PolicyError is a refusal by a policy check. It unwraps to
// [sandbox.ErrDenied], so callers classify it with errors.Is; the API
// reports Rule and Reason in the 403 body.
type PolicyError struct {
	// Rule is the check that refused, one of the Rule constants.
	Rule string
	// Reason explains the refusal to a person (or an agent) in one
	// sentence, without the "rejected" prefix.
	Reason string
}

// Error returns TinyAgent's wording: "Command rejected for security reasons:
// <reason>" for shell refusals and "SECURITY VIOLATION: <reason>" for Python
// refusals, the texts agents written for TinyAgent already recognise.
func (e *PolicyError) Error() string {
	if len(e.Rule) >= 7 && e.Rule[:7] == "python_" {
		return "SECURITY VIOLATION: " + e.Reason
	}
	return "Command rejected for security reasons: " + e.Reason
}

// Unwrap returns [sandbox.ErrDenied].
func (e *PolicyError) Unwrap() error { return sandbox.ErrDenied }

// deny builds a refusal.
func deny(rule, reason string) *PolicyError {
	return &PolicyError{Rule: rule, Reason: reason}
}
