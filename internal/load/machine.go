package load

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/warden-sandbox/warden/internal/stats"
)

// Machine describes the machine the suite ran on, which is the server's
// when it started the server itself. Fields it cannot read are empty.
type Machine struct {
	CPUModel    string `json:"cpu_model,omitempty"`
	CPUs        int    `json:"cpus"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	OS          string `json:"os,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	GoVersion   string `json:"go_version"`
	// LoadAverage is the 1-minute load average when the run began: other
	// work on the machine shows in the figures.
	LoadAverage float64 `json:"load_average,omitempty"`
}

func machineInfo() Machine {
	m := Machine{
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		CPUModel:  stats.FileField("/proc/cpuinfo", "model name", ':'),
		OS:        strings.Trim(stats.FileField("/etc/os-release", "PRETTY_NAME", '='), `"`),
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(stats.FileField("/proc/meminfo", "MemTotal", ':'), " kB"), 10, 64); err == nil {
		m.MemoryBytes = kb << 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAverage, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return m
}
