// Package image builds and finds Warden's runtime image: the Docker image in
// which agent code runs, as the unprivileged user sandbox (uid 1000, gid 1000)
// in /workspace, with Python 3 (cloudpickle, numpy, pandas, requests,
// matplotlib) and a small set of shell tools.
//
// [Build] tries two recipes, in this order unless [Options.Strategy] picks one:
//
//  1. A Dockerfile on the official Python image ([OfficialDockerfile]), used
//     when that image is present locally or can be pulled within
//     [Options.PullTimeout].
//  2. A base image bootstrapped from Debian packages: debootstrap, then
//     apt-get in a chroot, then the tree is imported with the Engine API as
//     [Options.BaseName]; [RuntimeDockerfile] is built on top of it.
//
// Offline guarantee: the second recipe needs no container registry and no
// PyPI, only a Debian mirror, which may be a local or air-gapped one
// ([Options.Mirror]). Once the base image exists, rebuilding the runtime image
// needs no network at all. Both recipes produce the same user, workspace,
// environment and labels, because those Dockerfile lines come from one place.
//
// The package never inspects images per execution: callers run [Ensure] once,
// at start-up or from a CLI command, and pass the image name to the provider.
package image
