//go:build !linux

package dynocg

import "fmt"

var errNotLinux = fmt.Errorf("%w: cgroups exist only on Linux", ErrUnsupported)

// Manager would create per-dyno groups; off Linux it cannot be made.
type Manager struct{}

// Group would be one dyno's cgroup; off Linux there are none.
type Group struct{}

// NewManager always fails off Linux. Errors: ErrUnsupported.
func NewManager(parent string) (*Manager, error) { return nil, errNotLinux }

// Check reports nothing supported. Errors: ErrUnsupported.
func (m *Manager) Check() (Support, error) { return Support{}, errNotLinux }

// Create fails off Linux. Errors: ErrUnsupported.
func (m *Manager) Create(name string, l Limits) (*Group, error) { return nil, errNotLinux }

// Load fails off Linux. Errors: ErrUnsupported.
func (m *Manager) Load(name string) (*Group, error) { return nil, errNotLinux }

// Sweep fails off Linux. Errors: ErrUnsupported.
func (m *Manager) Sweep(keep map[string]bool) error { return errNotLinux }

// Name is empty off Linux.
func (g *Group) Name() string { return "" }

// Add fails off Linux. Errors: ErrUnsupported.
func (g *Group) Add(pid int) error { return errNotLinux }

// OOMKills fails off Linux. Errors: ErrUnsupported.
func (g *Group) OOMKills() (uint64, error) { return 0, errNotLinux }

// Delete fails off Linux. Errors: ErrUnsupported.
func (g *Group) Delete() error { return errNotLinux }
