package policy

import (
	"fmt"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Arithmetic in bash ($((...)), ((...)), let, array subscripts, ${x:off:len},
// the [[ -eq ]] family) evaluates the value of every variable it names as
// an arithmetic expression in turn, and an array subscript in that value
// runs command substitutions:
//
//	x='a[$(rm -rf ~)]'; echo $((x))   # runs rm
//
// So a variable may appear in arithmetic only if the script itself
// assigned it an integer before the use (a plain top-level assignment, a
// for ((i=0; ...)) initialisation, or a for-in loop over integer literals)
// and never assigns it anything else. Values from the environment, from
// positional parameters and from command substitutions are refused.

// intVar is what the script does with one variable.
type intVar struct {
	established []uint // offsets after which an integer assignment has run
	unsafe      bool   // assigned something that may not be an integer
}

// assigningCommands set the variables named in their arguments.
var assigningCommands = []string{"read", "mapfile", "readarray", "getopts", "printf", "wait", "declare", "typeset", "local", "export", "readonly", "unset"}

// prepare collects the top-level functions and the integer assignments of
// f, before the checking walk.
func (u *unit) prepare(f *syntax.File) {
	u.funcs = map[string]uint{}
	u.ints = map[string]*intVar{}
	for _, st := range f.Stmts {
		if st.Background {
			continue
		}
		switch c := st.Cmd.(type) {
		case *syntax.FuncDecl:
			if c.Name != nil {
				if _, ok := u.funcs[c.Name.Value]; !ok {
					u.funcs[c.Name.Value] = c.End().Offset()
				}
			}
		case *syntax.CallExpr:
			if len(c.Args) == 0 {
				for _, a := range c.Assigns {
					if a.Name != nil && a.Index == nil && intValue(a) {
						u.intVar(a.Name.Value).established = append(u.intVar(a.Name.Value).established, a.End().Offset())
					}
				}
			}
		case *syntax.ArithmCmd:
			u.establishArith(c.X)
		case *syntax.LetClause:
			for _, x := range c.Exprs {
				u.establishArith(x)
			}
		case *syntax.ForClause:
			if cs, ok := c.Loop.(*syntax.CStyleLoop); ok && cs.Init != nil {
				u.establishArith(cs.Init)
			}
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Assign:
			if n.Name != nil && !intValue(n) {
				u.intVar(n.Name.Value).unsafe = true
			}
		case *syntax.WordIter:
			if !allIntItems(n) {
				u.intVar(n.Name.Value).unsafe = true
			}
		case *syntax.ParamExp:
			if n.Param != nil && n.Exp != nil && (n.Exp.Op == syntax.AssignUnset || n.Exp.Op == syntax.AssignUnsetOrNull) {
				if n.Exp.Word == nil || !isArithNumber(evalWord(n.Exp.Word).val) || !evalWord(n.Exp.Word).konst {
					u.intVar(n.Param.Value).unsafe = true
				}
			}
		case *syntax.CoprocClause:
			if n.Name != nil {
				u.intVar(n.Name.Lit()).unsafe = true
			}
		case *syntax.CallExpr:
			// read x, printf -v x, command read x, builtin eval ...: every
			// name among the arguments after such a command is suspect.
			assigning := false
			for _, w := range n.Args {
				a := evalWord(w)
				if !a.konst {
					continue
				}
				name := baseName(a.val)
				if name == "eval" || name == "source" || name == "." {
					u.poisoned = true // assigns names the checker cannot see
				}
				if slices.Contains(assigningCommands, name) {
					assigning = true
					continue
				}
				if assigning {
					v, _, _ := strings.Cut(a.val, "[")
					if isName(v) {
						u.intVar(v).unsafe = true
					}
				}
			}
		}
		return true
	})
}

func baseName(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (u *unit) intVar(name string) *intVar {
	v := u.ints[name]
	if v == nil {
		v = &intVar{}
		u.ints[name] = v
	}
	return v
}

// establishArith records the plain assignments (x=...) of an arithmetic
// expression: their result is an integer.
func (u *unit) establishArith(x syntax.ArithmExpr) {
	switch x := x.(type) {
	case *syntax.BinaryArithm:
		if x.Op == syntax.Assgn {
			if w, ok := x.X.(*syntax.Word); ok && isName(w.Lit()) {
				u.intVar(w.Lit()).established = append(u.intVar(w.Lit()).established, x.End().Offset())
			}
		}
		u.establishArith(x.X)
		u.establishArith(x.Y)
	case *syntax.ParenArithm:
		u.establishArith(x.X)
	}
}

// intValue reports whether an assignment stores an integer (or nothing).
func intValue(a *syntax.Assign) bool {
	if a.Array != nil {
		return false
	}
	if a.Value == nil {
		return true
	}
	if len(a.Value.Parts) == 1 {
		switch p := a.Value.Parts[0].(type) {
		case *syntax.ArithmExp:
			return true
		case *syntax.DblQuoted:
			if len(p.Parts) == 1 {
				if _, ok := p.Parts[0].(*syntax.ArithmExp); ok {
					return true
				}
			}
		}
	}
	w := evalWord(a.Value)
	return w.konst && (w.val == "" || isArithNumber(strings.TrimLeft(w.val, "+-")))
}

func allIntItems(n *syntax.WordIter) bool {
	if len(n.Items) == 0 {
		return false // for x; do: iterates over "$@"
	}
	for _, w := range n.Items {
		a := evalWord(w)
		if !a.konst || !isArithNumber(strings.TrimLeft(a.val, "+-")) {
			return false
		}
	}
	return true
}

// isArithNumber reports whether s is an integer constant of bash
// arithmetic: decimal, 0x hex, octal, or base#digits.
func isArithNumber(s string) bool {
	if s == "" {
		return false
	}
	if base, digits, ok := strings.Cut(s, "#"); ok {
		if !isDigits(base) || digits == "" {
			return false
		}
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if !(c == '@' || c == '_' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')) {
				return false
			}
		}
		return true
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		for i := 2; i < len(s); i++ {
			c := s[i] | 0x20
			if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
				return false
			}
		}
		return true
	}
	return isDigits(s)
}

// checkArith refuses arithmetic that reads a value the script did not
// itself make an integer.
func (u *unit) checkArith(x syntax.ArithmExpr) *PolicyError {
	switch x := x.(type) {
	case *syntax.BinaryArithm:
		// The target of a plain = is written, not read.
		if w, ok := x.X.(*syntax.Word); !ok || x.Op != syntax.Assgn || !isName(w.Lit()) {
			if perr := u.checkArith(x.X); perr != nil {
				return perr
			}
		}
		return u.checkArith(x.Y)
	case *syntax.UnaryArithm:
		return u.checkArith(x.X)
	case *syntax.ParenArithm:
		return u.checkArith(x.X)
	case *syntax.FlagsArithm:
		return u.checkArith(x.X)
	case *syntax.Word:
		return u.checkArithWord(x)
	}
	return nil
}

func (u *unit) checkArithWord(w *syntax.Word) *PolicyError {
	pos := w.Pos().Offset()
	for _, part := range w.Parts {
		if perr := u.checkArithPart(part, len(w.Parts) == 1, pos); perr != nil {
			return perr
		}
	}
	return nil
}

func (u *unit) checkArithPart(part syntax.WordPart, alone bool, pos uint) *PolicyError {
	switch p := part.(type) {
	case *syntax.Lit:
		if isArithNumber(p.Value) {
			return nil
		}
		if alone && isName(p.Value) {
			return u.checkArithVar(p.Value, pos)
		}
		return arithDenied(fmt.Sprintf("%q is evaluated as an expression", p.Value))
	case *syntax.ParamExp:
		if p.Length {
			return nil // ${#x} is a number
		}
		if p.Param == nil || p.Excl || p.Index != nil || p.Slice != nil || p.Repl != nil || p.Exp != nil || p.Names != 0 {
			return arithDenied("a complex parameter expansion is evaluated as an expression")
		}
		switch p.Param.Value {
		case "#", "?", "$", "!":
			return nil
		}
		if !isName(p.Param.Value) {
			return arithDenied(fmt.Sprintf("parameter $%s is evaluated as an expression", p.Param.Value))
		}
		return u.checkArithVar(p.Param.Value, pos)
	case *syntax.DblQuoted:
		for _, dp := range p.Parts {
			if perr := u.checkArithPart(dp, alone && len(p.Parts) == 1, pos); perr != nil {
				return perr
			}
		}
		return nil
	case *syntax.ArithmExp:
		return nil // a number; its own expression is checked where it is
	case *syntax.CmdSubst:
		return arithDenied("the output of a command substitution is evaluated as an expression")
	}
	return arithDenied("this value is evaluated as an expression")
}

func arithDenied(why string) *PolicyError {
	return deny(RuleShellArithmetic, "Unsafe arithmetic: "+why+", which can run commands hidden in it")
}

// checkArithVar accepts a variable the script made an integer before pos.
func (u *unit) checkArithVar(name string, pos uint) *PolicyError {
	v := u.ints[name]
	if v == nil {
		v = &intVar{}
	}
	if !v.unsafe && !u.poisoned {
		for _, e := range v.established {
			if e <= pos {
				return nil
			}
		}
		// Inside a for loop that assigns it an integer.
		for _, n := range u.stack {
			f, ok := n.(*syntax.ForClause)
			if !ok {
				continue
			}
			switch l := f.Loop.(type) {
			case *syntax.WordIter:
				if l.Name.Value == name && allIntItems(l) && pos > l.End().Offset() {
					return nil
				}
			case *syntax.CStyleLoop:
				if l.Init != nil && initAssigns(l.Init, name, pos) {
					return nil
				}
			}
		}
	}
	return arithDenied(fmt.Sprintf("variable %s is evaluated as an expression and the script did not set it to an integer first", name))
}

// initAssigns reports whether x assigns name with = before pos.
func initAssigns(x syntax.ArithmExpr, name string, pos uint) bool {
	switch x := x.(type) {
	case *syntax.BinaryArithm:
		if x.Op == syntax.Assgn {
			if w, ok := x.X.(*syntax.Word); ok && w.Lit() == name && x.End().Offset() <= pos {
				return true
			}
		}
		return initAssigns(x.X, name, pos) || initAssigns(x.Y, name, pos)
	case *syntax.ParenArithm:
		return initAssigns(x.X, name, pos)
	}
	return false
}
