package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/docker"
)

// providerReport is what `warden doctor` says of one provider.
type providerReport struct {
	Name      string        `json:"name"`
	Usable    bool          `json:"usable"`
	Isolation string        `json:"isolation"`
	Reason    string        `json:"reason"`
	Docker    *docker.Probe `json:"docker,omitempty"`
	Image     string        `json:"image,omitempty"`
	ImageOK   bool          `json:"image_present,omitempty"`
}

func cmdDoctor(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("warden doctor", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sf := newSettingFlags(e)
	sf.add(fs, "timeout", "SANDBOX__DOCKER_CONNECTION_TIMEOUT", "timeout of one connection attempt")
	sf.add(fs, "retries", "SANDBOX__DOCKER_MAX_RETRIES", "connection retries")
	sf.add(fs, "image", "SANDBOX__IMAGE", "runtime image to look for")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	s := cfg.Sandbox
	retries := s.DockerMaxRetries
	if retries == 0 {
		retries = -1 // docker.DetectOptions reads 0 as "default"
	}
	probe := docker.Detect(ctx, docker.DetectOptions{Host: s.DockerHost, Timeout: s.DockerConnectionTimeout, Retries: retries})
	d := providerReport{Name: "docker", Isolation: "container", Docker: &probe, Image: s.Image}
	switch {
	case !probe.Available:
		d.Reason = "Docker is not usable: " + probe.Error
	default:
		d.ImageOK = imagePresent(ctx, s.DockerHost, s.Image, s.DockerConnectionTimeout)
		d.Usable = true
		d.Reason = "Docker Engine " + probe.Version + " (API " + probe.APIVersion + ")"
		if !d.ImageOK {
			d.Reason += "; runtime image " + s.Image + " is missing: run `warden image build`"
		}
	}
	reports := []providerReport{d, bwrapReport(ctx), localReport(s.MockMode)}
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	for _, r := range reports {
		mark := "✗"
		if r.Usable {
			mark = "✓"
		}
		fmt.Fprintf(e.stdout, "%s %-10s (isolation: %s) %s\n", mark, r.Name, r.Isolation, r.Reason)
	}
	fmt.Fprintln(e.stdout)
	fmt.Fprint(e.stdout, probe.Text())
	if !d.Usable || !d.ImageOK {
		return exitError{code: 1}
	}
	return nil
}

func imagePresent(ctx context.Context, host, image string, timeout time.Duration) bool {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = cli.ImageInspect(ctx, image)
	return err == nil
}

func bwrapReport(ctx context.Context) providerReport {
	r := providerReport{Name: "bubblewrap", Isolation: "namespace"}
	p, err := bwrap.New(ctx, bwrap.Options{})
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	defer p.Close(ctx)
	limits := "memory, CPU and process limits enforced"
	if !p.Capabilities().MemoryLimit {
		limits = "limits NOT enforced (they need root and cgroup v1)"
	}
	r.Reason = "can create sandboxes here (" + limits + "), but is not offered yet: seccomp and Landlock are still missing"
	return r
}

// localReport says whether the unisolated local provider could run: it
// needs SANDBOX__MOCK_MODE=true and a Python 3 on the host.
func localReport(mock bool) providerReport {
	r := providerReport{Name: "local", Isolation: "none"}
	py, err := exec.LookPath("python3")
	if _, serr := os.Stat("/usr/bin/python3"); serr == nil {
		py, err = "/usr/bin/python3", nil
	}
	switch {
	case err != nil:
		r.Reason = "no python3 on PATH"
	case !mock:
		r.Reason = "runs code with NO isolation (python " + py + "); off unless SANDBOX__MOCK_MODE=true"
	default:
		r.Usable = true
		r.Reason = "enabled by SANDBOX__MOCK_MODE: runs code with NO isolation (python " + py + ")"
	}
	return r
}
