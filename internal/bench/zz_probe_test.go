package bench

import (
	"context"
	"os"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/forkserver"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestZZProbe(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	ctx := t.Context()
	fp, err := forkserver.New(ctx, forkserver.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close(ctx)
	probs, _ := humanEvalPrograms()
	svc, err := newService(ctx, fp, sandbox.Spec{}.WithDefaults(), poolSize)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close(context.Background())
	op := svc.humanEvalOp("a", "b", probs, true)
	for round := 0; round < 3; round++ {
		c0 := selfCPU()
		if _, err := op.fn(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("Go process CPU per program %.2f ms", float64(selfCPU()-c0)/1e6/float64(len(probs)))
	}
}
