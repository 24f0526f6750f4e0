// Command warden-init is the program the bubblewrap provider runs inside
// each sandbox, before Python: it applies the Landlock rules and resource
// limits Warden gives it, then executes the sandbox's agent. Warden uses
// it when it lies beside the warden executable (go install
// ./cmd/... puts both in one directory); without it Warden runs itself
// in that role, and every sandbox start pays the start-up of a far
// larger program. It is not meant to be run by hand.
package main

import (
	"fmt"
	"os"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
)

func main() {
	bwrap.Init() // never returns when run as the sandbox init
	fmt.Fprintln(os.Stderr, "warden-init: Warden's sandbox init, run by warden inside each bubblewrap sandbox; it is not run by hand")
	os.Exit(2)
}
