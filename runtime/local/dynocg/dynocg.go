// Package dynocg puts each dyno of the local runtime in its own cgroup so one
// tenant's dyno cannot starve the host or its neighbours: a memory limit (the
// kernel OOM-kills a dyno past it instead of letting it swap or grow), CPU
// shares (v1) or weight (v2), and a limit on how many tasks it may have (a
// fork bomb stops at it).
//
// Hosts have either cgroup hierarchy, so a Manager uses v2 where the host is
// unified and v1 otherwise (legacy or hybrid; a hybrid host's v2 mount holds no
// controllers). The cgroup files are written by github.com/containerd/cgroups;
// this package only decides what to write and when.
//
// All groups live under one parent, relative to the root of each hierarchy
// (v1: /sys/fs/cgroup/<controller>/<parent>/<name>; v2:
// /sys/fs/cgroup/<parent>/<name>), so that a restarted server finds them again
// and Sweep can tell which are its own.
//
// A dyno's first process must be in its group before it runs the app:
// children forked earlier, and memory touched earlier, escape the limits.
// Start it blocked (reading a pipe, or in the dyno init before it execs the
// app), call Group.Add with its pid, then release it.
//
// To report a dyno as out of memory, compare Group.OOMKills when the dyno
// exits (before Delete) with its value at start: the kernel counts every
// OOM kill in the group, including a child the app survives.
package dynocg

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// ErrUnsupported is returned (wrapped, with the reason) when this host cannot
// do what was asked: it has no cgroup hierarchy at all, is not Linux, or lacks
// the controller a non-zero limit needs.
var ErrUnsupported = errors.New("dynocg: not supported on this host")

// ErrInvalid is returned (wrapped) for a group name or Limits that cannot be
// used.
var ErrInvalid = errors.New("dynocg: invalid argument")

// Limits are one dyno's resource limits. The zero value of a field means "no
// limit" for a new group; Create on an existing group leaves such a field as
// the group has it.
type Limits struct {
	// MemoryBytes is the most memory (RSS and page cache) the dyno's processes
	// may use together; past it the kernel OOM-kills one of them. Swap is
	// disabled for the group where the host allows it, so a memory hog is
	// killed rather than slowly swapping the host.
	MemoryBytes int64
	// CPU is the dyno's CPU share in cores (0.5 is half a core's worth). It is
	// relative, not a cap: v1 shares of 1024 per core, v2 the weight those
	// shares convert to. A dyno gets more when the host is idle.
	CPU float64
	// Pids is the most tasks (processes and threads) the dyno may have at
	// once; fork and clone fail past it.
	Pids int64
}

// Support says which limits this host enforces, as Check found them.
type Support struct {
	Memory, CPU, Pids bool
	// Mode is the hierarchy in use: "v1" or "v2".
	Mode string
}

// All reports whether memory, CPU and pids limits are all enforceable.
func (s Support) All() bool { return s.Memory && s.CPU && s.Pids }

func (s Support) String() string {
	return fmt.Sprintf("cgroup %s: memory=%t cpu=%t pids=%t", s.Mode, s.Memory, s.CPU, s.Pids)
}

// validate refuses negative limits and a CPU value that is not a number: the
// kernel would reject or misread them, and a silent "no limit" would hide the
// mistake.
func (l Limits) validate() error {
	if l.MemoryBytes < 0 || l.Pids < 0 || l.CPU < 0 || math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) {
		return fmt.Errorf("%w: limits %+v: each must be a finite number, zero or more", ErrInvalid, l)
	}
	return nil
}

// cpuShares maps cores onto v1 cpu.shares (1024 per core, the kernel's
// default for one task group), clamped to the kernel's range [2, 262144].
// Zero means "unset".
func cpuShares(cores float64) uint64 {
	if cores == 0 {
		return 0
	}
	return uint64(min(max(math.Round(cores*1024), 2), 262144))
}

// segment is one element of a group name: letters, digits, '.', '_', '-',
// not starting with '.' (so never "." or ".."). Names come from app and dyno
// ids that a tenant influences, so anything else is refused rather than
// cleaned: a name must never reach outside the parent.
var segment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)

// validName checks a slash-separated group (or parent) name.
func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalid)
	}
	for _, s := range strings.Split(name, "/") {
		if !segment.MatchString(s) {
			return fmt.Errorf("%w: group name %q: use letters, digits, '.', '_' and '-' between slashes", ErrInvalid, name)
		}
	}
	return nil
}
