// Package image builds and finds Warden's runtime image: the Docker image in
// which agent code runs, as the unprivileged user sandbox (uid 1000, gid 1000)
// in /workspace, with Python 3 (cloudpickle, numpy, pandas, requests,
// matplotlib) and a small set of shell tools.
//
// [Build] has two recipes:
//
//   - Official: a Dockerfile on the official Python image
//     ([OfficialDockerfile]), which runs apt-get and pip.
//   - Debian: a base image bootstrapped from Debian packages (debootstrap,
//     then apt-get in a chroot, then the tree is imported with the Engine API
//     as [Options.BaseName]), with [RuntimeDockerfile] built on top of it.
//
// By default ([StrategyAuto]) it uses the official image if it is present,
// else the Debian base if it is present, else it tries to pull the official
// image, giving up after [Options.PullTimeout] if the registry does not
// answer, and falls back to bootstrapping the Debian base.
//
// Offline guarantee: the Debian recipe needs no container registry and no
// PyPI, only a Debian mirror, which may be a local or air-gapped one
// ([Options.Mirror]). Once the base image exists, rebuilding the runtime image
// needs no network at all. Both recipes produce the same user, workspace,
// environment and labels, because those Dockerfile lines come from one place.
//
// The package never inspects images per execution: callers run [Ensure] once,
// at start-up or from a CLI command, and pass the image name to the provider.
package image
