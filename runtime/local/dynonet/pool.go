// Package dynonet gives each dyno its own network: a network namespace
// joined to the host by a veth pair on a point-to-point /30 of a subnet only
// Slipway uses (--dyno-subnet, default 10.213.0.0/16). The app listens on
// $PORT on its own address (Lease.Dyno) and the router dials that address.
//
// Why: dynos of different tenants share the machine with the API, its
// database and each other. On the host's network a dyno reaches every
// loopback service (the admin token is one HTTP call away). In its own
// namespace its 127.0.0.1 is its own, and nftables rules inside the
// namespace (which the dyno's unprivileged uid cannot change, having no
// CAP_NET_ADMIN there) let it answer connections but open none, except to
// the internet when the operator turns on --dyno-egress.
//
// Pool and Lease are plain Go and work everywhere; Attach, Detach, Sweep
// and EnableEgress need Linux and return an error elsewhere.
package dynonet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
)

// linkPrefix starts the name of every host-side veth, so Sweep can find the
// ones a crashed server left without touching anyone else's links.
const linkPrefix = "swy"

// Pool hands out point-to-point /30 subnets of one CIDR; safe for
// concurrent use. The zero Pool is not usable: create it with NewPool.
type Pool struct {
	cidr netip.Prefix
	n    int // number of /30s in cidr

	mu    sync.Mutex
	taken map[int]bool
}

// NewPool makes a Pool of the /30 subnets of cidr. It returns an error,
// naming the flag --dyno-subnet, when cidr is not an IPv4 CIDR, has host
// bits set, or is smaller than a /28 (fewer than four dynos).
func NewPool(cidr string) (*Pool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("--dyno-subnet %q: %w; give an IPv4 CIDR such as 10.213.0.0/16", cidr, err)
	}
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("--dyno-subnet %q: dyno networks are IPv4 only; give an IPv4 CIDR such as 10.213.0.0/16", cidr)
	}
	if p.Bits() > 28 {
		return nil, fmt.Errorf("--dyno-subnet %q: too small, each dyno takes a /30; give a /28 or larger", cidr)
	}
	if p.Masked() != p {
		return nil, fmt.Errorf("--dyno-subnet %q has host bits set; did you mean %s?", cidr, p.Masked())
	}
	return &Pool{cidr: p, n: 1 << (30 - p.Bits()), taken: map[int]bool{}}, nil
}

// Take leases the lowest free /30. It returns an error when every /30 is
// leased; a larger --dyno-subnet fixes that.
func (p *Pool) Take() (Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < p.n; i++ {
		if !p.taken[i] {
			p.taken[i] = true
			return p.lease(i), nil
		}
	}
	return Lease{}, fmt.Errorf("all %d dyno subnets of --dyno-subnet %s are in use; stop dynos or give a larger subnet", p.n, p.cidr)
}

// Reserve leases the /30 whose host side is hostIP again, for a dyno that
// was running before a server restart and is adopted. It returns an error
// when hostIP is not an address, is outside the pool, is not the host (.1)
// side of a /30, or is already leased.
func (p *Pool) Reserve(hostIP string) (Lease, error) {
	a, err := netip.ParseAddr(hostIP)
	if err != nil {
		return Lease{}, fmt.Errorf("reserve dyno subnet: %w", err)
	}
	if !a.Is4() || !p.cidr.Contains(a) {
		return Lease{}, fmt.Errorf("reserve dyno subnet: %s is outside --dyno-subnet %s; was the server restarted with another subnet?", a, p.cidr)
	}
	off := u32(a) - u32(p.cidr.Addr())
	if off%4 != 1 {
		return Lease{}, fmt.Errorf("reserve dyno subnet: %s is not the host side (.1) of a /30", a)
	}
	i := int(off / 4)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken[i] {
		return Lease{}, fmt.Errorf("reserve dyno subnet: %s is already leased to another dyno", a)
	}
	p.taken[i] = true
	return p.lease(i), nil
}

// Release returns l to the pool. Releasing a lease that is not held, or
// that came from another pool, does nothing.
func (p *Pool) Release(l Lease) {
	if l.Index < 0 || l.Index >= p.n || l != p.lease(l.Index) {
		return
	}
	p.mu.Lock()
	delete(p.taken, l.Index)
	p.mu.Unlock()
}

func (p *Pool) lease(i int) Lease {
	base := u32(p.cidr.Addr()) + uint32(i)*4
	return Lease{
		Index:  i,
		Host:   addr(base + 1),
		Dyno:   addr(base + 2),
		Prefix: netip.PrefixFrom(addr(base), 30),
	}
}

// Lease is one dyno's /30: Host is the .1 side (on the host's veth, the
// address the dyno sees as its gateway) and Dyno the .2 side (eth0 inside
// the dyno, where the app listens and the router dials).
type Lease struct {
	Index      int // position of the /30 in the pool, from 0
	Host, Dyno netip.Addr
	Prefix     netip.Prefix
}

// HostLink is the name of the lease's host-side veth: "swy" and the index
// in hex, at most 11 characters (Linux allows 15). It is deterministic so
// that Detach and Sweep find the link again after a server restart.
func (l Lease) HostLink() string { return fmt.Sprintf("%s%x", linkPrefix, l.Index) }

// valid reports whether l is a lease some Pool could have made.
func (l Lease) valid() bool {
	return l.Index >= 0 && l.Host.Is4() && l.Prefix.Bits() == 30 && l.Prefix.Masked() == l.Prefix &&
		l.Host == l.Prefix.Addr().Next() && l.Dyno == l.Host.Next()
}

// Options says how Attach sets up a dyno's network.
type Options struct {
	// Egress lets the dyno open connections to the internet (a default
	// route via the host, NATed by EnableEgress), but still not to private,
	// loopback, link-local or shared (CGNAT) ranges nor to the host.
	Egress bool
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
