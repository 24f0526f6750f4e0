package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/warden-sandbox/warden/internal/bench"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/forkserver"
)

func cmdBench(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden bench")
	sf := newSettingFlags(e)
	sf.add(fs, "image", "SANDBOX__IMAGE", "image for Warden and the baselines")
	n := fs.Int("n", 0, "samples per operation (default 200 for exec, 20 for lifecycle, 3 passes for humaneval)")
	cases := fs.String("cases", strings.Join(bench.AllCases(), ","), "comma-separated cases: "+strings.Join(bench.KnownCases(), ", ")+" (bwrap: the bubblewrap provider against the Docker provider; forkserver: the experimental fork server provider against bubblewrap)")
	idle := fs.Int("idle", bench.DefaultIdle, "sandboxes kept idle at once by the idle case")
	humanEval := fs.String("providers", strings.Join(bench.DefaultHumanEval(), ","), "comma-separated providers the humaneval case runs on through warden serve: bubblewrap, docker, forkserver, forkserver-run (the fork server through one-shot POST /sandbox/run)")
	format := fs.String("format", "text", "output: text, markdown or json")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the run to this file (Warden's Go side: the service, its clients, the providers; not the sandboxes' processes), for go tool pprof")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	p, err := openDocker(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	opts := bench.Options{
		Image: cfg.Sandbox.Image,
		N:     *n,
		Cases: strings.Split(*cases, ","),
		Log:   e.stderr,
		Idle:  *idle,
	}
	if slices.Contains(opts.Cases, bench.CaseHumanEval) {
		opts.HumanEval = strings.Split(*humanEval, ",")
	}
	if slices.ContainsFunc(opts.Cases, func(c string) bool {
		return c == bench.CaseBwrap || c == bench.CasePool || c == bench.CaseHumanEval || c == bench.CaseIdle || c == bench.CaseForkServer
	}) {
		bp, err := bwrap.New(ctx, bwrap.Options{})
		if err != nil {
			return err
		}
		defer bp.Close(context.WithoutCancel(ctx))
		opts.Bwrap = bp
	}
	if slices.Contains(opts.Cases, bench.CaseForkServer) || slices.Contains(opts.HumanEval, bench.HumanEvalOnForkServer) ||
		slices.Contains(opts.HumanEval, bench.HumanEvalOnForkServerRun) {
		fp, err := forkserver.New(ctx, forkserver.Options{})
		if err != nil {
			return err
		}
		defer fp.Close(context.WithoutCancel(ctx))
		opts.ForkServer = fp
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := bench.Run(ctx, p, opts)
	if err != nil {
		return err
	}
	switch *format {
	case "markdown":
		fmt.Fprint(e.stdout, rep.Markdown())
	case "json":
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	default:
		fmt.Fprint(e.stdout, rep.Text())
	}
	return nil
}

// startCPUProfile starts a Go CPU profile written to path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
