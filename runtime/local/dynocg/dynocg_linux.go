//go:build linux

package dynocg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/slipway/slipway/internal/backoff"
)

// unifiedMount is where a unified (v2) host mounts its hierarchy; it is the
// only place cgroups.Mode looks, so it is the only one this package uses.
const unifiedMount = "/sys/fs/cgroup"

// killTimeout bounds how long Delete keeps killing a group's processes. A
// SIGKILLed process cannot fork again, so even a fork bomb empties in a few
// rounds; only a task stuck in the kernel (D state) outlasts this.
const killTimeout = 10 * time.Second

// Manager creates and finds the per-dyno groups under one parent group. It
// is safe for concurrent use, except that Sweep must not run while dynos are
// being created (it would remove their new groups).
type Manager struct {
	parent string
	// v1 holds the memory, cpu and pids subsystems the host mounts; nil on v2.
	v1 []cgroup1.Subsystem
	// v2 is the parent group; nil on v1. enabled are the controllers (of
	// memory, cpu, pids) the root offers: every dyno group gets them all.
	v2      *cgroup2.Manager
	enabled []string
	// swapAcct: the host accounts swap per group (v1 memory.memsw.*, v2
	// memory.swap.max), so a group can be kept from swapping.
	swapAcct bool
}

// Group is one dyno's cgroup. It is safe for concurrent use.
type Group struct {
	name string
	v1   cgroup1.Cgroup
	v2   *cgroup2.Manager
	dir  string // v2 only: the group's directory
}

// pather is what containerd's v1 subsystems implement to locate a group.
type pather interface{ Path(string) string }

// NewManager creates (or adopts) the parent group, e.g. "slipway", in the
// hierarchy this host has: v2 when /sys/fs/cgroup is unified, v1 otherwise.
// It needs root (or a delegated hierarchy).
//
// Errors: ErrInvalid for a bad parent name; ErrUnsupported when the host
// has no cgroup hierarchy, or (v1) none of the memory, cpu and pids
// controllers; the OS error when the parent cannot be created (EACCES or
// EPERM when not root). A host with only some controllers is not an error:
// Check says which.
func NewManager(parent string) (*Manager, error) {
	if err := validName(parent); err != nil {
		return nil, err
	}
	m := &Manager{parent: parent}
	var err error
	switch cgroups.Mode() {
	case cgroups.Unified:
		err = m.initV2()
	case cgroups.Legacy, cgroups.Hybrid:
		// A hybrid host's unified mount has no controllers (they are all
		// bound to v1), so v1 is the one that can limit anything.
		err = m.initV1()
	default:
		err = fmt.Errorf("%w: no cgroup hierarchy is mounted", ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) initV1() error {
	subs, err := cgroup1.Default()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	for _, s := range subs {
		if n := s.Name(); n == cgroup1.Memory || n == cgroup1.Cpu || n == cgroup1.Pids {
			m.v1 = append(m.v1, s)
		}
	}
	if len(m.v1) == 0 {
		return fmt.Errorf("%w: none of the memory, cpu and pids cgroup v1 controllers is mounted", ErrUnsupported)
	}
	if _, err := cgroup1.New(cgroup1.StaticPath(m.rel("")), &specs.LinuxResources{}, m.hierarchy()); err != nil {
		return fmt.Errorf("dynocg: creating parent group %s: %w", m.parent, err)
	}
	if mem := m.v1Sub(cgroup1.Memory); mem != nil {
		m.swapAcct = exists(filepath.Join(mem.Path(m.rel("")), "memory.memsw.limit_in_bytes"))
	}
	return nil
}

func (m *Manager) initV2() error {
	probe, err := cgroup2.Load(m.rel(""))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	avail, err := probe.RootControllers()
	if err != nil {
		return fmt.Errorf("dynocg: reading the root cgroup's controllers: %w", err)
	}
	for _, c := range []string{"memory", "cpu", "pids"} {
		if slices.Contains(avail, c) {
			m.enabled = append(m.enabled, c)
		}
	}
	// Enabling the controllers on the way down is all the parent needs;
	// each dyno's group enables them on the parent itself when created.
	if m.v2, err = cgroup2.NewManager(unifiedMount, m.rel(""), m.v2Resources(Limits{})); err != nil {
		return fmt.Errorf("dynocg: creating parent group %s: %w", m.parent, err)
	}
	m.swapAcct = exists(filepath.Join(unifiedMount, m.rel(""), "memory.swap.max"))
	return nil
}

// Check reports which of memory, CPU and pids limits this host enforces,
// by looking for their control files in the parent group (v1) or its
// available controllers (v2). Use it to refuse to run dynos unlimited when
// limits were asked for.
//
// Errors: an OS error reading the parent group (other than a missing file).
func (m *Manager) Check() (Support, error) {
	if m.v2 != nil {
		have, err := m.v2.Controllers()
		if err != nil {
			return Support{}, fmt.Errorf("dynocg: reading the controllers of %s: %w", m.parent, err)
		}
		return Support{Mode: "v2",
			Memory: slices.Contains(have, "memory"),
			CPU:    slices.Contains(have, "cpu"),
			Pids:   slices.Contains(have, "pids"),
		}, nil
	}
	s := Support{Mode: "v1"}
	for _, c := range []struct {
		name cgroup1.Name
		file string
		ok   *bool
	}{
		{cgroup1.Memory, "memory.limit_in_bytes", &s.Memory},
		{cgroup1.Cpu, "cpu.shares", &s.CPU},
		{cgroup1.Pids, "pids.max", &s.Pids},
	} {
		sub := m.v1Sub(c.name)
		if sub == nil {
			continue
		}
		_, err := os.Stat(filepath.Join(sub.Path(m.rel("")), c.file))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Support{}, fmt.Errorf("dynocg: %w", err)
		}
		*c.ok = err == nil
	}
	return s, nil
}

// Create makes the group name (e.g. "<appid>/<dyno-id>", or flat) under the
// parent with limits l, or, when it exists already (a dyno adopted after a
// restart), writes l's non-zero limits to it.
//
// Errors: ErrInvalid for a bad name or negative limits; ErrUnsupported when
// a non-zero limit needs a controller the host lacks (no silent "unlimited");
// the OS error when a file cannot be written (EBUSY when lowering the memory
// limit of a live group below what it uses). A group that was new is
// removed again on failure.
func (m *Manager) Create(name string, l Limits) (*Group, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	s, err := m.Check()
	if err != nil {
		return nil, err
	}
	for _, need := range []struct {
		asked, have bool
		what        string
	}{
		{l.MemoryBytes > 0, s.Memory, "memory"},
		{l.CPU > 0, s.CPU, "cpu"},
		{l.Pids > 0, s.Pids, "pids"},
	} {
		if need.asked && !need.have {
			return nil, fmt.Errorf("%w: a %s limit was asked for %s but the %s cgroup %s controller is not available", ErrUnsupported, need.what, name, s.Mode, need.what)
		}
	}
	if m.v2 != nil {
		// NewChild is idempotent: mkdir -p, enable controllers, write values.
		c, err := m.v2.NewChild(name, m.v2Resources(l))
		if err != nil {
			return nil, fmt.Errorf("dynocg: creating group %s: %w", name, err)
		}
		return &Group{name: name, v2: c, dir: m.v2Dir(name)}, nil
	}
	_, loadErr := m.load(name)
	existed := loadErr == nil
	// New with no resources only makes the directories; Update then writes
	// the limits in an order the kernel accepts for a new group and an
	// adopted one alike (memsw must never drop below the memory limit).
	c, err := cgroup1.New(cgroup1.StaticPath(m.rel(name)), &specs.LinuxResources{}, m.hierarchy())
	if err == nil {
		res := m.v1Resources(l)
		if err = raiseSwapFirst(c, res); err == nil {
			err = c.Update(res)
		}
		if err != nil && !existed {
			c.Delete()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dynocg: creating group %s: %w", name, err)
	}
	return &Group{name: name, v1: c}, nil
}

// Load finds the existing group name, e.g. one a previous server process
// created for a dyno it is now adopting. Limits are not checked or changed.
//
// Errors: ErrInvalid for a bad name; fs.ErrNotExist (wrapped) when there is
// no such group.
func (m *Manager) Load(name string) (*Group, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	return m.load(name)
}

func (m *Manager) load(name string) (*Group, error) {
	if m.v2 != nil {
		dir := m.v2Dir(name)
		if !exists(dir) {
			return nil, fmt.Errorf("dynocg: group %s: %w", name, fs.ErrNotExist)
		}
		c, err := cgroup2.Load(m.rel(name), cgroup2.WithMountpoint(unifiedMount))
		if err != nil {
			return nil, fmt.Errorf("dynocg: group %s: %w", name, err)
		}
		return &Group{name: name, v2: c, dir: dir}, nil
	}
	c, err := cgroup1.Load(cgroup1.StaticPath(m.rel(name)), m.hierarchy())
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("dynocg: group %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("dynocg: group %s: %w", name, err)
	}
	return &Group{name: name, v1: c}, nil
}

// Sweep removes every group under the parent that keep does not name (nor
// lies on the way to one), killing its processes first: the groups of dynos
// that a crashed server left behind. Run it once at start-up, after
// adopting the dynos that survived and before starting new ones.
//
// Errors: the errors of the groups that could not be removed, joined; the
// others are removed all the same.
func (m *Manager) Sweep(keep map[string]bool) error {
	dirs, err := m.groupDirs(keep)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		if onTheWay(d, keep) {
			continue
		}
		g, err := m.load(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = g.Delete()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// groupDirs lists the groups under the parent in every hierarchy (a crash
// can leave a group in some v1 hierarchies only), deepest first so children
// go before their parents; it does not look inside groups in keep.
func (m *Manager) groupDirs(keep map[string]bool) ([]string, error) {
	var roots []string
	if m.v2 != nil {
		roots = []string{m.v2Dir("")}
	}
	for _, s := range m.v1 {
		roots = append(roots, s.(pather).Path(m.rel("")))
	}
	seen := map[string]bool{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed meanwhile, or never in this hierarchy
				}
				return err
			}
			if !d.IsDir() || p == root {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			seen[rel] = true
			if keep[rel] {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dynocg: listing the groups under %s: %w", m.parent, err)
		}
	}
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return dirs, nil
}

// onTheWay reports whether d is in keep or is an ancestor of a name in it
// (e.g. the "<appid>" of a kept "<appid>/web.1").
func onTheWay(d string, keep map[string]bool) bool {
	if keep[d] {
		return true
	}
	for k := range keep {
		if strings.HasPrefix(k, d+"/") {
			return true
		}
	}
	return false
}

// Name is the group's name under its parent, as given to Create or Load.
func (g *Group) Name() string { return g.name }

// Add moves the process pid into the group. Its children forked from then
// on are born in it; children forked before stay where they were, and
// memory it used before stays charged where it was. So add a dyno's first
// process before it runs the app: start it blocked (e.g. reading a pipe,
// as the tests do), Add it, then let it go on.
//
// Errors: ErrInvalid for pid <= 0; the OS error of the write (ESRCH when
// the process is gone). On v1 a failure may leave the process in some of
// the hierarchies: kill it.
func (g *Group) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("%w: pid %d", ErrInvalid, pid)
	}
	var err error
	if g.v2 != nil {
		err = g.v2.AddProc(uint64(pid))
	} else {
		err = g.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("dynocg: adding pid %d to %s: %w", pid, g.name, err)
	}
	return nil
}

// OOMKills returns how many processes the kernel has OOM-killed in this
// group since it was created (v1: memory.oom_control's oom_kill, v2:
// memory.events' oom_kill). A dyno whose count rose was killed for using
// more memory than its limit. The count survives the processes, not
// Delete: read it before deleting.
//
// Errors: ErrUnsupported when the group has no memory controller or the
// kernel keeps no such counter (v1 before Linux 4.13); the OS error of the
// read.
func (g *Group) OOMKills() (uint64, error) {
	if g.v2 != nil {
		st, err := g.v2.StatFiltered(cgroup2.StatMemoryEvents)
		if err != nil {
			return 0, fmt.Errorf("dynocg: reading the memory events of %s: %w", g.name, err)
		}
		if st.MemoryEvents == nil {
			return 0, fmt.Errorf("%w: group %s has no memory.events", ErrUnsupported, g.name)
		}
		return st.MemoryEvents.OomKill, nil
	}
	// Files that this kernel lacks (memsw without swap accounting, kmem on
	// newer kernels) must not hide the counter.
	st, err := g.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return 0, fmt.Errorf("dynocg: reading the memory stats of %s: %w", g.name, err)
	}
	if st.MemoryOomControl == nil || !g.v1Has(cgroup1.Memory) {
		return 0, fmt.Errorf("%w: group %s has no memory.oom_control", ErrUnsupported, g.name)
	}
	return st.MemoryOomControl.OomKill, nil
}

// Delete SIGKILLs every process left in the group, waits for them to be
// gone and removes the group (in every v1 hierarchy). Deleting a group that
// is already gone is not an error.
//
// Errors: processes still there after 10s of killing (a task stuck in the
// kernel); the OS error of listing or removing the group.
func (g *Group) Delete() error {
	if err := g.kill(); err != nil {
		return err
	}
	var err error
	if g.v2 != nil {
		if exists(g.dir) {
			err = g.v2.Delete()
		}
	} else if err = g.v1.Delete(); errors.Is(err, cgroup1.ErrCgroupDeleted) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("dynocg: removing group %s: %w", g.name, err)
	}
	return nil
}

// kill SIGKILLs the group's processes until none is left. v2 has
// cgroup.kill, which reaches every process at once; v1 signals the pids it
// lists, and lists again for any forked meanwhile. (A v1 pid that exits and
// is reused between the listing and the signal would be hit too; with pids
// handed out in order up to pid_max, that takes the whole pid space to
// wrap between two system calls.)
func (g *Group) kill() error {
	deadline := time.Now().Add(killTimeout)
	poll := backoff.Exponential{Initial: time.Millisecond, Max: 50 * time.Millisecond}.Sequence()
	for {
		pids, err := g.procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dynocg: %d processes of %s still running after %s of SIGKILL (pids %v)", len(pids), g.name, killTimeout, pids)
		}
		if g.v2 != nil {
			if err := g.v2.Kill(); err != nil {
				return fmt.Errorf("dynocg: killing %s: %w", g.name, err)
			}
		} else {
			for _, pid := range pids {
				unix.Kill(pid, unix.SIGKILL) // ESRCH: it exited meanwhile
			}
		}
		time.Sleep(poll.Next()) // the kernel tells v1 users nothing when a task leaves
	}
}

// procs lists the processes in the group and its children, in any
// hierarchy; none when the group is gone.
func (g *Group) procs() ([]int, error) {
	gone := func(err error) bool {
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, cgroup1.ErrCgroupDeleted)
	}
	if g.v2 != nil {
		ps, err := g.v2.Procs(true)
		if gone(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dynocg: listing the processes of %s: %w", g.name, err)
		}
		out := make([]int, len(ps))
		for i, p := range ps {
			out[i] = int(p)
		}
		return out, nil
	}
	var out []int
	for _, s := range g.v1.Subsystems() {
		ps, err := g.v1.Processes(s.Name(), true)
		if gone(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dynocg: listing the processes of %s: %w", g.name, err)
		}
		for _, p := range ps {
			if !slices.Contains(out, p.Pid) {
				out = append(out, p.Pid)
			}
		}
	}
	return out, nil
}

func (g *Group) v1Has(n cgroup1.Name) bool {
	return slices.ContainsFunc(g.v1.Subsystems(), func(s cgroup1.Subsystem) bool { return s.Name() == n })
}

// raiseSwapFirst raises an adopted v1 group's memsw limit ahead of its
// memory limit when the new limit is above the old one: the kernel refuses
// a memory limit above memsw, and containerd (v3.1.3) writes the memory
// limit first even then (its reordering for this case swaps the wrong two
// settings).
func raiseSwapFirst(c cgroup1.Cgroup, r *specs.LinuxResources) error {
	if r.Memory == nil || r.Memory.Swap == nil {
		return nil
	}
	st, err := c.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return err
	}
	if st.Memory == nil || st.Memory.Usage == nil || st.Memory.Usage.Limit >= uint64(*r.Memory.Swap) {
		return nil
	}
	return c.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: r.Memory.Swap}})
}

// v1Resources turns l into the OCI resources containerd's v1 code writes.
func (m *Manager) v1Resources(l Limits) *specs.LinuxResources {
	var r specs.LinuxResources
	if l.MemoryBytes > 0 {
		zero := uint64(0)
		r.Memory = &specs.LinuxMemory{Limit: &l.MemoryBytes, Swappiness: &zero}
		if m.swapAcct {
			r.Memory.Swap = &l.MemoryBytes // memsw: memory plus swap
		}
	}
	if shares := cpuShares(l.CPU); shares > 0 {
		r.CPU = &specs.LinuxCPU{Shares: &shares}
	}
	if l.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	return &r
}

// v2Resources turns l into v2 resources. Every controller the parent has is
// enabled even without a limit, so memory.events (OOMKills) always exists.
func (m *Manager) v2Resources(l Limits) *cgroup2.Resources {
	var r cgroup2.Resources
	if slices.Contains(m.enabled, "memory") {
		r.Memory = &cgroup2.Memory{}
		if l.MemoryBytes > 0 {
			r.Memory.Max = &l.MemoryBytes
			if m.swapAcct {
				zero := int64(0) // v2's swap.max is swap alone
				r.Memory.Swap = &zero
			}
		}
	}
	if slices.Contains(m.enabled, "cpu") {
		r.CPU = &cgroup2.CPU{}
		if shares := cpuShares(l.CPU); shares > 0 {
			w := cgroup2.ConvertCPUSharesToCgroupV2Value(shares)
			r.CPU.Weight = &w
		}
	}
	if slices.Contains(m.enabled, "pids") {
		r.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	return &r
}

// hierarchy restricts containerd's v1 code to the subsystems m limits with,
// so groups are not also made in every other mounted hierarchy.
func (m *Manager) hierarchy() cgroup1.InitOpts {
	return cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return m.v1, nil })
}

func (m *Manager) v1Sub(n cgroup1.Name) pather {
	for _, s := range m.v1 {
		if s.Name() == n {
			return s.(pather)
		}
	}
	return nil
}

// rel is name's path from the root of a hierarchy, e.g. "/slipway/app/web.1".
func (m *Manager) rel(name string) string { return path.Join("/", m.parent, name) }

func (m *Manager) v2Dir(name string) string { return filepath.Join(unifiedMount, m.rel(name)) }

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
