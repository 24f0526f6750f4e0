package policy

import "github.com/warden-sandbox/warden/internal/sandbox"

// Rule names the check that refused a command or a piece of code. Rules
// are stable identifiers: the API returns them in 403 bodies and tests
// match on them.
type Rule string

// The rules.
const (
	// RuleShellSyntax: the command does not parse as bash.
	RuleShellSyntax Rule = "shell_syntax"
	// RuleShellEmpty: there is no command to run.
	RuleShellEmpty Rule = "shell_empty"
	// RuleShellCommand: a command that is not in the allowed set.
	RuleShellCommand Rule = "shell_command"
	// RuleShellDynamic: a command name, script or checked argument that is
	// computed at run time and so cannot be checked.
	RuleShellDynamic Rule = "shell_dynamic"
	// RuleShellOperator: a control operator that is not in the allowed set.
	RuleShellOperator Rule = "shell_operator"
	// RuleShellDangerous: a dangerous use of an allowed command, such as
	// find -delete, awk system() or sed -i.
	RuleShellDangerous Rule = "shell_dangerous_use"
	// RuleShellAssignment: an assignment to a variable that changes how
	// commands are found or run (PATH, LD_PRELOAD, BASH_ENV, ...).
	RuleShellAssignment Rule = "shell_assignment"
	// RuleShellArithmetic: an arithmetic context that evaluates a value the
	// checker cannot see; bash runs $(...) hidden in such values.
	RuleShellArithmetic Rule = "shell_arithmetic"
	// RuleShellExpansion: an expansion that evaluates a value as code
	// (${x@P}) or as a variable name (${!x}).
	RuleShellExpansion Rule = "shell_expansion"
	// RuleShellRedirect: a redirection that writes to a system location.
	RuleShellRedirect Rule = "shell_redirect"
	// RuleShellNesting: shells inside shells nested deeper than the checker
	// follows.
	RuleShellNesting Rule = "shell_nesting"
	// RuleShellArgv: an argv element that is a shell operator, although an
	// argv runs without a shell.
	RuleShellArgv Rule = "shell_argv"
	// RuleShellEnv: an environment variable that changes how commands are
	// found or run.
	RuleShellEnv Rule = "shell_env"

	// RulePythonImport: an import of a module that is not allowed, by
	// statement or by name in a string.
	RulePythonImport Rule = "python_import"
	// RulePythonImportCall: a call of __import__.
	RulePythonImportCall Rule = "python_import_call"
	// RulePythonFunction: a use of a dangerous built-in function (exec,
	// eval, compile, open, ...).
	RulePythonFunction Rule = "python_function"
	// RulePythonObfuscation: string manipulation that can hide a name from
	// the checks (chr, ord, base64, .format, ...).
	RulePythonObfuscation Rule = "python_obfuscation"
	// RulePythonIntrospection: an attribute or name that walks to the
	// interpreter's internals (__builtins__, __subclasses__, __globals__,
	// frames, ...).
	RulePythonIntrospection Rule = "python_introspection"
	// RulePythonDynamicAccess: attribute access by a computed name
	// (getattr(x, name)), which the checks cannot follow.
	RulePythonDynamicAccess Rule = "python_dynamic_access"
)

// PolicyError is a refusal by a policy check. It unwraps to
// [sandbox.ErrDenied], so callers classify it with errors.Is; the API
// reports Rule and Reason in the 403 body.
type PolicyError struct {
	// Rule is the check that refused, one of the Rule constants.
	Rule Rule
	// Reason explains the refusal to a person (or an agent) in one
	// sentence, without the "rejected" prefix.
	Reason string
}

// Error returns TinyAgent's wording: "Command rejected for security reasons:
// <reason>" for shell refusals and "SECURITY VIOLATION: <reason>" for Python
// refusals, the texts agents written for TinyAgent already recognise.
func (e *PolicyError) Error() string {
	if e.Rule.Python() {
		return "SECURITY VIOLATION: " + e.Reason
	}
	return "Command rejected for security reasons: " + e.Reason
}

// Unwrap returns [sandbox.ErrDenied].
func (e *PolicyError) Unwrap() error { return sandbox.ErrDenied }

// Python reports whether r is a rule of the Python checks.
func (r Rule) Python() bool {
	switch r {
	case RulePythonImport, RulePythonImportCall, RulePythonFunction, RulePythonObfuscation, RulePythonInputSize,
		RulePythonIntrospection, RulePythonDynamicAccess:
		return true
	}
	return false
}

// deny builds a refusal.
func deny(rule Rule, reason string) *PolicyError {
	return &PolicyError{Rule: rule, Reason: reason}
}
