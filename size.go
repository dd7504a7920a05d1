package slipway

// Size is a dyno size a formation may ask for: the memory and CPU each of
// its dynos gets. The local runtime turns it into the dyno's cgroup
// limits, the Kubernetes runtime into the container's resource requests
// and limits.
type Size struct {
	Name        string
	Description string
	// MemoryBytes and MilliCPU are what each dyno may use (a thousandth
	// of a core for MilliCPU); 0 leaves the server's default in place.
	MemoryBytes int64
	MilliCPU    int64
}

// DefaultSize is the size of a formation created without one: the
// server's default dyno limits (on the local runtime those of
// --dyno-memory and --dyno-cpu; on Kubernetes none).
const DefaultSize = "standard"

// Sizes returns the sizes Slipway offers, smallest first. Names follow
// Akkeris's general-purpose tiers.
func Sizes() []Size {
	const mi = 1 << 20
	return []Size{
		{Name: DefaultSize, Description: "The server's default dyno limits."},
		{Name: "gp1", Description: "256 MiB of memory, a quarter of a CPU.", MemoryBytes: 256 * mi, MilliCPU: 250},
		{Name: "gp2", Description: "512 MiB of memory, half a CPU.", MemoryBytes: 512 * mi, MilliCPU: 500},
		{Name: "gp3", Description: "1 GiB of memory, one CPU.", MemoryBytes: 1024 * mi, MilliCPU: 1000},
		{Name: "gp4", Description: "2 GiB of memory, two CPUs.", MemoryBytes: 2048 * mi, MilliCPU: 2000},
	}
}

// FindSize returns the size named name; ok is false when Slipway does not
// offer it. The empty name is DefaultSize, as formations stored before
// sizes were checked may hold it.
func FindSize(name string) (s Size, ok bool) {
	if name == "" {
		name = DefaultSize
	}
	for _, s := range Sizes() {
		if s.Name == name {
			return s, true
		}
	}
	return Size{}, false
}
