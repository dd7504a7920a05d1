package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/procfs"
)

// The machine's components in a scale run, by the command name the kernel
// gives their processes (at most 15 bytes), in the order reported.
var components = []struct{ comm, name string }{
	{"slipway", "Slipway (3 servers)"},
	{"postgres", "PostgreSQL"},
	{"kube-apiserver", "kube-apiserver"},
	{"etcd", "etcd"},
	{"kube-controller", "kube-controller-manager"},
	{"kube-scheduler", "kube-scheduler"},
	{"kwok", "kwok (fake nodes)"},
	{"", "this driver"},
}

// cpuTimes is CPU seconds (user and system) by component, and the
// machine's busy seconds over all cores.
type cpuTimes struct {
	by   map[string]float64
	busy float64
}

// readCPU reads every process's CPU time. A PostgreSQL backend that has
// exited is counted in its parent's children times, so for postgres those
// are added too.
func readCPU() cpuTimes {
	t := cpuTimes{by: map[string]float64{}}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return t
	}
	if st, err := fs.Stat(); err == nil {
		c := st.CPUTotal
		t.busy = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return t
	}
	self := os.Getpid()
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue
		}
		name := ""
		if p.PID == self {
			name = "this driver"
		}
		for _, c := range components {
			if c.comm != "" && st.Comm == c.comm {
				name = c.name
			}
		}
		if name == "" {
			continue
		}
		secs := st.CPUTime()
		if st.Comm == "postgres" {
			secs += float64(st.CUTime+st.CSTime) / userHZ
		}
		t.by[name] += secs
	}
	return t
}

// userHZ is the kernel's clock tick for /proc times (100 on Linux).
const userHZ = 100

// cpuLine says, for a phase between two readings, the CPU seconds each
// component spent per release, and how busy the machine's cores were.
func cpuLine(before, after cpuTimes, releases int, wall float64, cores int) string {
	if after.by == nil || releases == 0 || wall <= 0 {
		return "–"
	}
	var parts []string
	for _, c := range components {
		d := after.by[c.name] - before.by[c.name]
		if d <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f ms", c.name, 1000*d/float64(releases)))
	}
	busy := (after.busy - before.busy) / (wall * float64(cores))
	return fmt.Sprintf("%s; cores %.0f%% busy", strings.Join(parts, ", "), 100*busy)
}
