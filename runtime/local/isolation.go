package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/local/dynocg"
	"github.com/slipway/slipway/runtime/local/dynoinit"
	"github.com/slipway/slipway/runtime/local/dynonet"
)

// Isolation says how dynos are kept apart from the server and each other.
// With Enabled (Linux, as root) every dyno and release-phase command runs
// under its init in new PID, mount, network, IPC and UTS namespaces, as its
// app's own uid, in a root of its own (the host's /usr and /etc read-only,
// the slug at /app through an overlay it owns, a private /tmp), with its own
// address on a veth pair, and in a cgroup with memory, CPU and pids limits.
type Isolation struct {
	// Enabled turns isolation on; New fails when it cannot be had.
	Enabled bool
	// AppUID returns the uid of an app's dynos (the server records it in
	// the store, so it survives restarts). The gid is the same number.
	// Required with Enabled.
	AppUID func(appID string) (int, error)
	// Subnet holds the dynos' point-to-point links. Default 10.213.0.0/16.
	Subnet string
	// Egress lets dynos open connections off the machine (NAT); loopback
	// and private ranges stay unreachable either way.
	Egress bool
	// Port is the $PORT every isolated dyno listens on at its own address.
	// Default 5000.
	Port int
	// MemoryBytes, CPU (cores) and Pids limit each dyno; 0 is no limit.
	MemoryBytes int64
	CPU         float64
	Pids        int64
}

// CheckIsolation reports why dynos cannot be isolated on this host (not
// root, no cgroup controllers for memory, CPU and pids), or nil.
func CheckIsolation() error {
	if os.Geteuid() != 0 {
		return errors.New("the server does not run as root")
	}
	m, err := dynocg.NewManager("slipway")
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	s, err := m.Check()
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	if !s.All() {
		return fmt.Errorf("cgroup limits are not all enforceable (%s)", s)
	}
	return nil
}

// isolator holds the host resources isolation hands out.
type isolator struct {
	cfg  Isolation
	root string // DataDir
	pool *dynonet.Pool
	cg   *dynocg.Manager
}

// box is what one isolated process holds on the host.
type box struct {
	id         string
	lease      dynonet.Lease
	group      *dynocg.Group
	limits     dynocg.Limits // the cgroup's, from the formation's size
	limitBytes int64
	// netns holds the dyno's network namespace open until release: the
	// veth (and so its name and address) lives as long as the namespace,
	// and must not be freed for another server's dyno while this server
	// still dials the address or will delete the link by name.
	netns *os.File
}

func newIsolator(cfg Isolation, dataDir string) (*isolator, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("dyno isolation needs the server to run as root (namespaces, cgroups, uids and veth pairs); run as root, or use the Kubernetes runtime")
	}
	if cfg.AppUID == nil {
		return nil, errors.New("local runtime: Isolation.AppUID is required")
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "10.213.0.0/16"
	}
	if cfg.Port == 0 {
		cfg.Port = 5000
	}
	pool, err := dynonet.NewPool(cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if err := dynonet.Fence(pool); err != nil {
		return nil, fmt.Errorf("dyno network: %w", err)
	}
	cg, err := dynocg.NewManager("slipway")
	if err != nil {
		return nil, fmt.Errorf("dyno limits: %w", err)
	}
	if cfg.Egress {
		if err := dynonet.EnableEgress(pool); err != nil {
			return nil, fmt.Errorf("--dyno-egress: %w", err)
		}
	}
	return &isolator{cfg: cfg, root: dataDir, pool: pool, cg: cg}, nil
}

// limits are the cgroup limits of a dyno of the given formation size: the
// size's memory and CPU where it sets them (see slipway.Sizes), else the
// server's MemoryBytes and CPU; Pids always the server's.
func (iso *isolator) limits(size string) dynocg.Limits {
	l := dynocg.Limits{MemoryBytes: iso.cfg.MemoryBytes, CPU: iso.cfg.CPU, Pids: iso.cfg.Pids}
	if s, ok := slipway.FindSize(size); ok {
		if s.MemoryBytes > 0 {
			l.MemoryBytes = s.MemoryBytes
		}
		if s.MilliCPU > 0 {
			l.CPU = float64(s.MilliCPU) / 1000
		}
	}
	return l
}

// prepare fills spec for an isolated start of process id of app appID from
// slug folder lower, and creates its overlay layers in dir. size is the
// formation's, which sets the dyno's limits.
func (iso *isolator) prepare(appID, id, dir, lower, size string, spec *dynoinit.Spec) (*box, error) {
	uid, err := iso.cfg.AppUID(appID)
	if err != nil {
		return nil, fmt.Errorf("allocating the app's uid: %w", err)
	}
	if uid <= 0 || uid == os.Geteuid() {
		return nil, fmt.Errorf("uid %d cannot run a dyno", uid)
	}
	upper, work, root := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	for _, p := range []string{upper, work, root} {
		if err := os.Mkdir(p, 0o700); err != nil {
			return nil, err
		}
	}
	// The upper layer's root is /app's root: the dyno's own.
	if err := os.Chown(upper, uid, uid); err != nil {
		return nil, err
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return nil, err
	}
	lease, err := iso.pool.Take()
	if err != nil {
		return nil, err
	}
	spec.Isolate = true
	spec.Lower, spec.Upper, spec.Work, spec.Root = lower, upper, work, root
	spec.UID, spec.GID = uid, uid
	spec.Hostname = "dyno"
	if iso.cfg.Pids > 0 {
		// RLIMIT_NPROC counts every process and thread of the uid, and all
		// of an app's dynos share it: it backs up the per-dyno pids cgroup
		// for an app at its largest formation.
		spec.Nproc = uint64(iso.cfg.Pids) * uint64(slipway.MaxQuantity)
	}
	spec.Dir = ""
	lim := iso.limits(size)
	return &box{id: id, lease: lease, limits: lim, limitBytes: lim.MemoryBytes}, nil
}

// attach puts the init pid into the dyno's cgroup and network before it
// starts the command.
func (iso *isolator) attach(b *box, pid int) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fmt.Errorf("opening the dyno's network namespace: %w", err)
	}
	b.netns = ns
	g, err := iso.cg.Create(b.id, b.limits)
	if err != nil {
		return fmt.Errorf("creating the dyno's cgroup: %w", err)
	}
	b.group = g
	if err := g.Add(pid); err != nil {
		return fmt.Errorf("putting the dyno in its cgroup: %w", err)
	}
	// Link names follow lease numbers, so the kernel arbitrates between
	// servers on one machine (tests run several): a lease whose link
	// another server holds stays taken here, and the next one is tried.
	for tries := 0; ; tries++ {
		err := dynonet.Attach(pid, b.lease, dynonet.Options{Egress: iso.cfg.Egress})
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) || tries == 64 {
			return fmt.Errorf("giving the dyno its network: %w", err)
		}
		next, terr := iso.pool.Take()
		if terr != nil {
			return terr
		}
		b.lease = next
	}
}

// release gives back what b holds; the init is gone.
func (iso *isolator) release(b *box) {
	dynonet.Detach(b.lease)
	if b.netns != nil {
		b.netns.Close()
	}
	iso.pool.Release(b.lease)
	if b.group != nil {
		b.group.Delete()
	}
}

// forget lets go of b without touching the dyno (which is about to be
// stopped and cleaned up).
func (iso *isolator) forget(b *box) {
	if b.netns != nil {
		b.netns.Close()
	}
	iso.pool.Release(b.lease)
}

// adopt re-takes the host resources of a dyno a previous server started.
func (iso *isolator) adopt(rec procRecord) (*box, error) {
	lease, err := iso.pool.Reserve(rec.NetHost)
	if err != nil {
		return nil, err
	}
	lim := iso.limits(rec.Size)
	b := &box{id: rec.ID, lease: lease, limits: lim, limitBytes: lim.MemoryBytes}
	if b.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", rec.PID)); err != nil {
		iso.pool.Release(lease)
		return nil, err
	}
	if g, err := iso.cg.Load(rec.ID); err == nil {
		b.group = g
	}
	return b, nil
}

// cleanup removes the link and cgroup of a process a previous server
// started and that is not adopted. Only recorded ones: other servers on
// this machine own the rest.
func (iso *isolator) cleanup(rec procRecord) {
	if rec.NetHost != "" {
		if l, err := iso.pool.Reserve(rec.NetHost); err == nil {
			dynonet.Detach(l)
			iso.pool.Release(l)
		}
	}
	if rec.ID != "" {
		if g, err := iso.cg.Load(rec.ID); err == nil {
			g.Delete()
		}
	}
}

// dynoEnv is the whole environment of a dyno's command: base (the config
// vars, PATH and SLIPWAY_RELEASE_VERSION) and PORT, DYNO and HOME (home
// unless a config var sets it), nothing of the server's.
func dynoEnv(base []string, port int, dyno, home string) []string {
	env := append([]string(nil), base...)
	if port != 0 {
		env = append(env, "PORT="+strconv.Itoa(port))
	}
	env = append(env, "DYNO="+dyno)
	if !slices.ContainsFunc(base, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		env = append(env, "HOME="+home) // unless a config var sets it
	}
	return env
}

// DefaultSize is the memory and CPU a dyno of the default size gets: the
// isolation's limits, none when dynos are not isolated.
func (r *Runtime) DefaultSize() slipway.Size {
	if !r.cfg.Isolation.Enabled {
		return slipway.Size{}
	}
	return slipway.Size{MemoryBytes: r.cfg.Isolation.MemoryBytes, MilliCPU: int64(r.cfg.Isolation.CPU * 1000)}
}
