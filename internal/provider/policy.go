package provider

import (
	"strings"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Policies returns the shell and Python policies the settings give a
// provider of the given isolation. The defaults are TinyAgent's: with
// SANDBOX__BYPASS_SHELL_SAFETY=auto the shell check is off where the
// provider isolates (policy.DefaultShellPolicy), and with
// SANDBOX__PYTHON_SAFETY=auto the Python check is on only where nothing
// isolates.
func Policies(c config.SandboxConfig, iso sandbox.Isolation) (policy.ShellPolicy, policy.PythonPolicy) {
	sh := policy.DefaultShellPolicy(iso)
	sh.Bypass = c.BypassShellSafety.Or(sh.Bypass)
	sh.ExtraCommands = c.AdditionalSafeShellCommands
	sh.ExtraOperators = c.AdditionalSafeControlOperators
	py := policy.PythonPolicy{
		Trusted:                !c.PythonSafety.Or(iso == sandbox.IsolationNone),
		AuthorizedImports:      c.AuthorizedImports,
		AuthorizedFunctions:    c.AuthorizedFunctions,
		CheckStringObfuscation: c.CheckStringObfuscation,
	}
	return sh, py
}

// Guard wraps p in the policies the settings give it: every execution and
// environment is checked on the host before p sees it. The result still
// unwraps to p (policy.Guard.Unwrap).
func Guard(p sandbox.Provider, c config.SandboxConfig) *policy.Guard {
	sh, py := Policies(c, p.Capabilities().Isolation)
	return &policy.Guard{Provider: p, Shell: sh, Python: py, MaxInput: int(c.PolicyMaxInput)}
}

// DescribePolicies says in one line what the policies check, for status
// reports and `warden doctor`.
func DescribePolicies(sh policy.ShellPolicy, py policy.PythonPolicy) string {
	var b strings.Builder
	switch {
	case sh.Bypass || containsStar(sh.ExtraCommands):
		b.WriteString("shell check off")
	default:
		b.WriteString("shell check on")
		if len(sh.ExtraCommands) > 0 {
			b.WriteString(" (+" + strings.Join(sh.ExtraCommands, ",") + ")")
		}
	}
	if py.Trusted {
		b.WriteString("; python check off")
	} else {
		b.WriteString("; python check on")
		if py.AuthorizedImports != nil {
			b.WriteString(" (imports: " + strings.Join(py.AuthorizedImports, ",") + ")")
		}
	}
	return b.String()
}

func containsStar(s []string) bool {
	for _, v := range s {
		if v == "*" {
			return true
		}
	}
	return false
}
