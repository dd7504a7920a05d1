//go:build linux

package dynonet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// host tracks the host-side table this process wants: the guard always,
// egress when EnableEgress was called. Attach rebuilds the table the first
// time in a process, so a restart without --dyno-egress drops the NAT an
// earlier run installed, and again whenever it finds the table gone.
var host struct {
	sync.Mutex
	egress netip.Prefix // valid once EnableEgress succeeded
	built  bool
}

// Attach creates the veth pair for l, with the peer in the network
// namespace of pid (/proc/<pid>/ns/net) named eth0; assigns l.Host/30 on
// the host side and l.Dyno/30 inside; brings lo and eth0 up; with o.Egress
// adds a default route via l.Host; and installs the dyno's nftables rules.
// Rules (the dyno's and the host's guard) go in before any link is up, so
// there is no moment when the dyno is connected and unfiltered.
//
// It returns an error when l is not a lease of a Pool, when pid has no
// network namespace (the process is gone), when the host link already
// exists (the lease is attached twice, or a crashed server left it: Sweep at
// start-up removes leftovers), or when the kernel refuses (not root, no
// veth or nf_tables). On error it removes what it created.
func Attach(pid int, l Lease, o Options) (err error) {
	if !l.valid() {
		return fmt.Errorf("attach dyno network: %+v is not a lease; take one from a Pool", l)
	}
	name := l.HostLink()
	wrap := func(step string, err error) error {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("attach dyno network %s to pid %d: %s: %w (needs root or CAP_NET_ADMIN)", name, pid, step, err)
		}
		return fmt.Errorf("attach dyno network %s to pid %d: %s: %w", name, pid, step, err)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return wrap("open its network namespace (has the process exited?)", err)
	}
	defer ns.Close()
	if err := ensureHostRules(); err != nil {
		return wrap("host rules", err)
	}
	// The pair starts down and without addresses: harmless until the rules
	// below are in. Creating it first also means a lease or namespace that
	// is already attached fails here, before anything of theirs is touched.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return wrap("create veth", fmt.Errorf("%w: %s, or eth0 in the dyno, exists; Detach the lease or Sweep leftovers first", err, name))
		}
		return wrap("create veth", err)
	}
	defer func() {
		if err != nil {
			_ = netlink.LinkDel(veth)
		}
	}()
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return wrap("nftables", err)
	}
	if err := dynoRules(nft, l, o); err != nil {
		return wrap("install the dyno's nftables rules (is nf_tables in the kernel?)", err)
	}
	defer func() {
		if err != nil {
			nft.DelTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyINet})
			_ = nft.Flush()
		}
	}()
	if err := setUp(nil, name, l.Host, nil); err != nil {
		return wrap("host side", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return wrap("open the dyno's namespace", err)
	}
	defer h.Close()
	if err := setUp(h, "lo", netip.Addr{}, nil); err != nil {
		return wrap("dyno side", err)
	}
	var gw net.IP
	if o.Egress {
		gw = l.Host.AsSlice()
	}
	if err := setUp(h, "eth0", l.Dyno, gw); err != nil {
		return wrap("dyno side", err)
	}
	return nil
}

// setUp brings link name up in the namespace of h (nil: the host), with a
// as its /30 address when valid and a default route via gw when non-nil.
func setUp(h *netlink.Handle, name string, a netip.Addr, gw net.IP) error {
	if h == nil {
		h = &netlink.Handle{} // the zero Handle works in the caller's namespace
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if a.IsValid() {
		ipnet := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(30, 32)}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
			return fmt.Errorf("address %s on %s: %w", a, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	if gw != nil {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

// Detach deletes l's host-side link; the dyno's eth0 goes with it, and the
// dyno's rules with its namespace. A missing link is not an error (the
// dyno's namespace may already be gone, taking the pair along). It returns
// an error when the kernel refuses the deletion.
func Detach(l Lease) error {
	name := l.HostLink()
	link, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("detach dyno network %s: %w", name, err)
	}
	return nil
}

// Sweep deletes the host-side veths named like a HostLink whose lease is
// not in keep: left by a crashed server whose dynos are gone. Call it at
// start-up after adopting the dynos that survived. It only knows links by
// name, so one machine runs one Slipway server's dyno network. It returns
// the errors of the links it could not list or delete.
func Sweep(keep []Lease) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("sweep dyno networks: list links: %w", err)
	}
	kept := map[string]bool{}
	for _, l := range keep {
		kept[l.HostLink()] = true
	}
	var errs []error
	for _, link := range links {
		name := link.Attrs().Name
		if link.Type() != "veth" || !isHostLink(name) || kept[name] {
			continue
		}
		if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("sweep dyno network %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// isHostLink reports whether name is one HostLink would make.
func isHostLink(name string) bool {
	rest, ok := strings.CutPrefix(name, linkPrefix)
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return false
	}
	i, err := strconv.ParseUint(rest, 16, 31)
	return err == nil && strconv.FormatUint(i, 16) == rest
}

// EnableEgress is the host side of --dyno-egress: it turns on IPv4
// forwarding and NATs (masquerades) traffic from p's subnet leaving by any
// other link, while still dropping forwarded traffic between dynos and
// into them. Call it once at start-up, before Attach, and only when the
// operator asked for egress; dynos get their default route from
// Attach(…, Options{Egress: true}). It returns an error when it cannot
// write /proc/sys/net/ipv4/ip_forward or install the rules (not root, no
// nf_tables NAT in the kernel).
func EnableEgress(p *Pool) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0); err != nil {
		return fmt.Errorf("enable dyno egress: turn on IPv4 forwarding: %w (needs root)", err)
	}
	host.Lock()
	defer host.Unlock()
	if err := buildHostRules(p.cidr); err != nil {
		return fmt.Errorf("enable dyno egress: %w", err)
	}
	host.egress = p.cidr
	return nil
}

// ensureHostRules installs the host's slipway table on the first Attach of
// the process and whenever it has gone missing since.
func ensureHostRules() error {
	host.Lock()
	defer host.Unlock()
	if host.built {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		if _, err := c.ListTableOfFamily(tableName, nftables.TableFamilyINet); err == nil {
			return nil
		}
	}
	return buildHostRules(host.egress)
}

func buildHostRules(egress netip.Prefix) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if err := hostRules(c, egress); err != nil {
		return fmt.Errorf("install the host's nftables rules (is nf_tables, with NAT for egress, in the kernel?): %w", err)
	}
	host.built = true
	return nil
}

// Fence routes p's whole subnet nowhere (an "unreachable" route), beneath
// the /30 of each attached dyno: a connection the host opens to the address
// of a dyno that is gone fails at once with "no route to host" (the router
// then tries another dyno) instead of leaving by the default route, where
// whatever answers there would answer for the dyno. Replacing the route
// makes it safe to call again, from this or another server.
func Fence(p *Pool) error {
	dst := &net.IPNet{IP: p.cidr.Addr().AsSlice(), Mask: net.CIDRMask(p.cidr.Bits(), 32)}
	if err := netlink.RouteReplace(&netlink.Route{Dst: dst, Type: unix.RTN_UNREACHABLE}); err != nil {
		return fmt.Errorf("route the dyno subnet %s nowhere but to dynos: %w (needs root)", p.cidr, err)
	}
	return nil
}
