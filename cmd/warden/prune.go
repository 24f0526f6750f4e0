package main

import (
	"context"
	"flag"
	"fmt"
)

func cmdPrune(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("warden prune", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sf := newSettingFlags(e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	// Opening the provider removes orphans already; report how many.
	cfg.Sandbox.DockerMaxRetries = 0
	p, err := openDocker(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	n, err := p.RemoveOrphans(ctx)
	fmt.Fprintf(e.stdout, "removed %d orphaned containers\n", n)
	return err
}
