package policy

import (
	"errors"
	"testing"
)

func TestPythonAcceptance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   PythonPolicy
		code     string
		wantRule Rule
	}{
		{name: "import os", code: "import os", wantRule: RulePythonImport},
		{name: "numpy allowed", code: "import numpy as np\nprint(np.zeros(3))"},
		{name: "getattr builtins exec", code: "getattr(__builtins__, 'exec')('x')", wantRule: RulePythonFunction},
		{name: "vars builtins", code: "vars(__builtins__)['x']", wantRule: RulePythonIntrospection},
		{name: "globals builtins", code: "globals()['__builtins__']", wantRule: RulePythonIntrospection},
		{name: "subclasses", code: "().__class__.__base__.__subclasses__()", wantRule: RulePythonIntrospection},
		{name: "__import__ via string", code: "__import__('o'+'s')", wantRule: RulePythonImportCall},
		{name: "format", policy: PythonPolicy{CheckStringObfuscation: true}, code: "'{}'.format(1)", wantRule: RulePythonObfuscation},
		{name: "format without obfuscation check", code: "'{}'.format(1)"},
		{name: "trusted", policy: PythonPolicy{Trusted: true}, code: "import os; os.system('id')"},
		{name: "unparseable still checked", code: "import os\nif (", wantRule: RulePythonImport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(tt.code)
			if tt.wantRule == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.code, err)
				}
				return
			}
			if perr := checkRefusal(err); err == nil || perr != nil {
				t.Fatalf("Check(%q) = %v, want a refusal by %s (%v)", tt.code, err, tt.wantRule, perr)
			}
			var pe *PolicyError
			errors.As(err, &pe)
			if pe.Rule != tt.wantRule {
				t.Errorf("Check(%q) rule = %s (%s), want %s", tt.code, pe.Rule, pe.Reason, tt.wantRule)
			}
		})
	}
}

func TestNFKCFold(t *testing.T) {
	t.Parallel()
	tests := map[rune]string{'ｅ': "e", '𝐞': "e", 'ﬁ': "fi", 'ſ': "s", 'Ⅹ': "X", 'é': "", 'a': "", '数': ""}
	for r, want := range tests {
		if got := nfkcFold(r); got != want {
			t.Errorf("nfkcFold(%q) = %q, want %q", r, got, want)
		}
	}
}

var fuzzPythonPolicies = []PythonPolicy{
	{CheckStringObfuscation: true},
	{AuthorizedImports: []string{"importlib", "numpy.*"}, AuthorizedFunctions: []string{"open"}},
	{AuthorizedImports: []string{}},
}

func FuzzCheckPython(f *testing.F) {
	for _, s := range []string{
		"import os", "print(f\"{x!r:>{w}}\")", "getattr(x, 'a' 'b' + 'c')", "().__class__",
		"x = 'unterminated\nimport sys", "ｅｘｅｃ('1')", "'\\N{LATIN SMALL LETTER E}'",
		"from . import x", "import a.b as c, d", "f'{'{'}'", "globals()[k]", "rb'\\x00' u'\\u1234'",
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, code string, variant uint8) {
		p := fuzzPythonPolicies[int(variant)%len(fuzzPythonPolicies)]
		if err := p.Check(code); err != nil {
			if perr := checkRefusal(err); perr != nil {
				t.Fatalf("Check(%q): %v", code, perr)
			}
		}
	})
}

func BenchmarkCheckPython(b *testing.B) {
	cases := map[string]string{
		"statement": "print(sum(range(10)))",
		"analysis": `import numpy as np
import pandas as pd

df = pd.read_csv('data.csv')
df['ratio'] = df['a'] / df['b']
summary = df.groupby('category')['ratio'].agg(['mean', 'std', 'count'])
for name, row in summary.iterrows():
    print(f"{name}: {row['mean']:.3f} ± {row['std']:.3f} (n={row['count']})")
`,
	}
	for name, code := range cases {
		b.Run(name, func(b *testing.B) {
			p := PythonPolicy{CheckStringObfuscation: true}
			for b.Loop() {
				if err := p.Check(code); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
