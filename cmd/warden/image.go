package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/image"
)

func cmdImage(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "build" {
		return fmt.Errorf("want `warden image build`: %w", errUsage)
	}
	fs := flag.NewFlagSet("warden image build", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
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
	if err := fs.Parse(args[1:]); err != nil {
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
	if *framework != "" {
		fo := image.FrameworkOptions{Framework: *framework, Packages: packages, WheelDir: *wheels, PythonVersion: *python,
			Runtime: opts, NoCache: opts.NoCache, Rebuild: opts.Rebuild}
		if *python == "" || *python == image.DebianPython {
			fo.Base = opts.Name
		}
		name, built, err := image.EnsureFramework(ctx, cli, fo, e.stdout)
		if err != nil {
			return err
		}
		if !built {
			fmt.Fprintf(e.stdout, "image %s is already present (use --rebuild to build it again)\n", name)
		}
		return nil
	}
	built, err := image.Ensure(ctx, cli, opts, e.stdout)
	if err != nil {
		return err
	}
	if !built {
		fmt.Fprintf(e.stdout, "image %s is already present (use --rebuild to build it again)\n", opts.Name)
	}
	return nil
}
