package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/image"
)

func cmdImage(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden image build")
	sf := newSettingFlags(e)
	var opts image.Options
	sf.add(fs, "name", "SANDBOX__IMAGE", "image name")
	fs.BoolVar(&opts.NoCache, "no-cache", false, "build from scratch, without the build cache")
	fs.BoolVar(&opts.Rebuild, "rebuild", false, "build even if the image exists")
	fs.BoolVar(&opts.RebuildBase, "rebuild-base", false, "bootstrap the Debian base image again")
	fs.StringVar(&opts.Mirror, "mirror", "", "Debian `mirror` for the offline recipe (default: the host's apt sources)")
	strategy := fs.String("strategy", "auto", "recipe: auto (official Python image, else Debian bootstrap), official or debian")
	framework := fs.String("framework", "", "also build the image of an agent framework on the runtime image: "+strings.Join(image.Frameworks(), ", "))
	var packages multi
	fs.Var(&packages, "package", "extra pip `requirement` for --framework; repeatable")
	wheels := fs.String("wheels", "", "install --framework packages from this host `dir` of wheels, without a package index")
	python := fs.String("python-version", "", "Python version of the framework image (default: the runtime image's)")
	quiet := fs.Bool("quiet", false, "show no progress, only the outcome (and the log's tail on failure)")
	logFile := fs.String("log-file", "", "write the build's full log to `path` and keep it (default: a temporary file, kept only on failure)")
	switch {
	case len(args) > 0 && args[0] == "build":
		args = args[1:]
	case len(args) > 0 && strings.HasPrefix(args[0], "-"):
		// warden image --help is the help of warden image build; other
		// flags need the subcommand first.
		if err := parseFlags(fs, args); err != nil {
			if _, ok := err.(helpRequest); ok {
				return err
			}
		}
		return usageErrorf("want warden image build %s", strings.Join(args, " "))
	case len(args) > 0:
		msg := fmt.Sprintf("unknown subcommand %q; want warden image build", args[0])
		if suggest(args[0], []string{"build"}) != "" {
			msg = fmt.Sprintf("unknown subcommand %q; did you mean \"build\"?", args[0])
		}
		return usageErrorf("%s", msg)
	default:
		return usageErrorf("want warden image build")
	}
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
	opts.Name = cfg.Sandbox.Image
	opts.Strategy = image.Strategy(*strategy)
	copts := []client.Opt{client.FromEnv}
	if cfg.Sandbox.DockerHost != "" {
		copts = append(copts, client.WithHost(cfg.Sandbox.DockerHost))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return err
	}
	defer cli.Close()
	var show io.Writer = e.stderr
	if *quiet {
		show = nil
	}
	prog, err := newBuildProgress(show, *logFile)
	if err != nil {
		return err
	}
	name, built := opts.Name, false
	if *framework != "" {
		fo := image.FrameworkOptions{Framework: *framework, Packages: packages, WheelDir: *wheels, PythonVersion: *python,
			Runtime: opts, NoCache: opts.NoCache, Rebuild: opts.Rebuild}
		if *python == "" || *python == image.DebianPython {
			fo.Base = opts.Name
		}
		name, built, err = image.EnsureFramework(ctx, cli, fo, prog)
	} else {
		built, err = image.Ensure(ctx, cli, opts, prog)
	}
	prog.finish(err, e.stderr, *logFile != "")
	switch {
	case err != nil:
		return err
	case built:
		fmt.Fprintf(e.stdout, "built image %s\n", name)
	default:
		fmt.Fprintf(e.stdout, "image %s is already present (use --rebuild to build it again)\n", name)
	}
	return nil
}
