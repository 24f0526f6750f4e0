package image

import (
	"fmt"
	"strings"
)

// tools are the Debian packages of shell tools in the image, the same in
// both recipes. coreutils provides sleep, which providers use to keep a
// container alive.
var tools = []string{"bash", "coreutils", "procps", "file", "tree", "ripgrep", "git", "curl", "ca-certificates"}

// pythonPackages are the Python libraries agent code can import, as PyPI
// names for the official recipe.
var pythonPackages = []string{"cloudpickle", "numpy", "pandas", "requests", "matplotlib"}

// debianPythonPackages are the same libraries as Debian packages.
// python3-munkres is listed so that apt satisfies python3-fonttools'
// "python3-scipy | python3-munkres" with the small package instead of pulling
// scipy and, through pythran, a compiler toolchain (about 600 MB).
var debianPythonPackages = []string{
	"python3-cloudpickle", "python3-numpy", "python3-pandas", "python3-requests", "python3-matplotlib", "python3-munkres",
}

// debianPackages is what apt-get installs into the bootstrapped rootfs.
func debianPackages() []string {
	return append(append([]string(nil), debianPythonPackages...), tools...)
}

// RuntimeDockerfile returns the Dockerfile that turns a base image already
// holding Python and the tools (the Debian base, see [DefaultBaseName]) into
// the runtime image. It needs no network.
func RuntimeDockerfile(base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Warden runtime image on a Debian base built offline from packages.\n")
	fmt.Fprintf(&b, "FROM %s\n", base)
	b.WriteString(runtimeLayer())
	return b.String()
}

// OfficialDockerfile returns the Dockerfile that builds the runtime image on
// an official Python image such as [DefaultOfficialBase]. It runs apt-get and
// pip, so it needs a Debian mirror and PyPI.
func OfficialDockerfile(base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Warden runtime image on the official Python image.\n")
	fmt.Fprintf(&b, "FROM %s\n", base)
	fmt.Fprintf(&b, "RUN apt-get update \\\n")
	fmt.Fprintf(&b, " && apt-get install -y --no-install-recommends %s \\\n", strings.Join(tools, " "))
	fmt.Fprintf(&b, " && rm -rf /var/lib/apt/lists/*\n")
	fmt.Fprintf(&b, "RUN pip install --no-cache-dir %s\n", strings.Join(pythonPackages, " "))
	b.WriteString(runtimeLayer())
	return b.String()
}

// runtimeLayer is the part common to both Dockerfiles: user, workspace,
// environment and labels. Keeping it in one place keeps the two recipes from
// drifting apart on what the providers rely on.
//
// MPLCONFIGDIR points at /tmp because providers may run with a read-only root
// filesystem, where matplotlib could not write its cache under $HOME.
func runtimeLayer() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Everything below is shared by both recipes.\n")
	fmt.Fprintf(&b, "RUN groupadd --gid %d %s \\\n", GID, UserName)
	fmt.Fprintf(&b, " && useradd --uid %d --gid %d --no-log-init --create-home --shell /bin/bash %s \\\n", UID, GID, UserName)
	fmt.Fprintf(&b, " && mkdir -p %s \\\n", Workspace)
	fmt.Fprintf(&b, " && chown %d:%d %s \\\n", UID, GID, Workspace)
	fmt.Fprintf(&b, " && chmod 0755 %s\n", Workspace)
	fmt.Fprintf(&b, "ENV LANG=C.UTF-8 \\\n")
	fmt.Fprintf(&b, "    PYTHONDONTWRITEBYTECODE=1 \\\n")
	fmt.Fprintf(&b, "    MPLBACKEND=Agg \\\n")
	fmt.Fprintf(&b, "    MPLCONFIGDIR=/tmp/matplotlib\n")
	fmt.Fprintf(&b, "LABEL %s=\"1\" \\\n", LabelRuntime)
	fmt.Fprintf(&b, "      %s=%q\n", LabelVersion, RecipeVersion)
	fmt.Fprintf(&b, "WORKDIR %s\n", Workspace)
	fmt.Fprintf(&b, "USER %s\n", User)
	return b.String()
}
