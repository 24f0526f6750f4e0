package bench

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/stats"
)

// Machine describes where a report was measured. Fields that could not be
// read are empty.
type Machine struct {
	CPUModel      string `json:"cpu_model"`
	CPUs          int    `json:"cpus"`
	MemoryBytes   int64  `json:"memory_bytes"`
	OS            string `json:"os"`
	Kernel        string `json:"kernel"`
	DockerEngine  string `json:"docker_engine"`
	DockerAPI     string `json:"docker_api"`
	DockerCLI     string `json:"docker_cli,omitempty"`
	GoVersion     string `json:"go_version"`
	Architecture  string `json:"arch"`
	StorageDriver string `json:"storage_driver,omitempty"`
	// PageFault is what the first write to a page of a fresh anonymous
	// mapping costs, trap included; PopulatePage the same page made
	// present by madvise(MADV_POPULATE_WRITE), without the trap; Syscall
	// a getppid(2). Medians; zero when not measured (see machineCosts).
	PageFault    time.Duration `json:"page_fault_ns,omitempty"`
	PopulatePage time.Duration `json:"populate_page_ns,omitempty"`
	Syscall      time.Duration `json:"syscall_ns,omitempty"`
}

// machineInfo reads /proc, /etc/os-release and the Docker daemon. It never
// fails: what it cannot learn stays empty.
func machineInfo(ctx context.Context, cli *client.Client, d *dockerCLI) Machine {
	m := Machine{
		CPUs:         runtime.NumCPU(),
		GoVersion:    runtime.Version(),
		Architecture: runtime.GOARCH,
		CPUModel:     stats.FileField("/proc/cpuinfo", "model name", ':'),
		OS:           strings.Trim(stats.FileField("/etc/os-release", "PRETTY_NAME", '='), `"`),
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(stats.FileField("/proc/meminfo", "MemTotal", ':'), " kB"), 10, 64); err == nil {
		m.MemoryBytes = kb << 10
	}
	m.PageFault, m.PopulatePage, m.Syscall = machineCosts()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		m.DockerEngine, m.DockerAPI = v.Version, v.APIVersion
	}
	if info, err := cli.Info(ctx, client.InfoOptions{}); err == nil {
		m.StorageDriver = info.Info.Driver
	}
	if d != nil {
		if out, err := d.output(ctx, true, "version", "--format", "{{.Client.Version}}"); err == nil {
			m.DockerCLI = strings.TrimSpace(string(out))
		}
	}
	return m
}
