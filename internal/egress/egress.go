// Package egress decides which addresses the server may connect to on
// behalf of an organization-scoped token: the build archives it fetches and
// the webhooks it delivers for such a token. Without the rule a tenant could
// make the server probe loopback ports (the API, the database, other
// tenants' dynos) and private networks, and read the answers back through
// build checksums and hook results.
//
// The rule is enforced on the resolved address as the socket is about to
// connect (a net.Dialer Control hook), so a DNS name that resolves to a
// private address, a name whose answer changes between check and use, and a
// redirect to a private address are all refused; a refused connection sends
// no packet. CheckURL applies the same rule to the literal host of a URL, so
// an obviously refused URL is turned down when it is given.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Policy is the rule for connections made for organization-scoped tokens:
// public addresses only, plus the prefixes the operator opened with
// --allow-private-fetch. The zero Policy allows public addresses only.
//
// Policy is a pflag.Value, so it can be a flag itself.
type Policy struct {
	// Allow lists prefixes connected to even though they are not public.
	Allow []netip.Prefix
	// InterfaceAddrs lists this machine's addresses, which are refused
	// even when public (its dynos and services may listen on them); nil
	// means net.InterfaceAddrs.
	InterfaceAddrs func() ([]net.Addr, error)
}

// RefusedError is a connection or URL the policy refused.
type RefusedError struct {
	// Host is the address or name refused, as it was given.
	Host string
	// Reason says what it is, e.g. "a loopback address".
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s is %s; for a token limited to one organization Slipway connects only to public addresses", e.Host, e.Reason)
}

// IsRefused reports whether err is, or wraps, a *RefusedError.
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}

// nonPublicV4 are IPv4 ranges that are not globally reachable but that
// netip's IsPrivate, IsLoopback and IsLinkLocal… do not cover (IANA
// special-purpose address registry).
var nonPublicV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT, cloud internals)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
}

var (
	globalV6  = netip.MustParsePrefix("2000::/3") // the only IPv6 unicast space handed out for the internet
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	docV6     = netip.MustParsePrefix("2001:db8::/32")
)

// reason returns why a is not public, or "" when it is.
func reason(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsUnspecified():
		return "the unspecified address, which reaches this machine"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsPrivate():
		return "a private address"
	case a.IsMulticast():
		return "a multicast address"
	}
	if a.Is4() {
		for _, p := range nonPublicV4 {
			if p.Contains(a) {
				return "not a public address"
			}
		}
		return ""
	}
	// IPv6 forms that carry an IPv4 address reach that address.
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return reason(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixToFour.Contains(a):
		return reason(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	case docV6.Contains(a), !globalV6.Contains(a):
		return "not a public address"
	}
	return ""
}

// Check returns a *RefusedError unless a is a public address of another
// machine or inside an allowed prefix.
func (p Policy) Check(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	why := reason(a)
	if why == "" && p.isLocal(a) {
		why = "an address of this server"
	}
	if why == "" {
		return nil
	}
	for _, pre := range p.Allow {
		if pre.Contains(a) {
			return nil
		}
	}
	return &RefusedError{Host: a.String(), Reason: why}
}

// isLocal reports whether a is assigned to one of this machine's
// interfaces. When they cannot be listed, every address counts as local:
// refusing is the safe answer.
func (p Policy) isLocal(a netip.Addr) bool {
	list := p.InterfaceAddrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return true
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// Control is a net.Dialer Control hook: it runs after the name is resolved
// and before the socket connects, and refuses an address Check refuses.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Host: address, Reason: "not an IP address and port"}
	}
	return p.Check(ap.Addr())
}

// Dialer returns a dialer whose every connection is checked by Control.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
}

// Transport returns an HTTP transport whose connections are checked by
// Control. It uses no proxy: a proxy would connect on our behalf, past the
// check. Keep it apart from transports of unchecked requests, so no pooled
// connection is shared.
func (p Policy) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = p.Dialer().DialContext
	return t
}

// Client returns an HTTP client with Transport and the given timeout.
// Redirects are followed as usual; each new connection is checked.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: p.Transport()}
}

// CheckURL refuses, with a *RefusedError, an http(s) URL whose literal host
// is an address Check refuses or a loopback name (localhost, *.localhost).
// Hosts that are other names pass: they are checked when they are dialled.
// A URL that does not parse passes too; callers validate URLs themselves.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return p.CheckHost(u.Hostname())
}

// CheckHost is CheckURL for a bare host (no port, no brackets).
func (p Policy) CheckHost(host string) error {
	if host == "" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.Check(a); err != nil {
			return &RefusedError{Host: host, Reason: err.(*RefusedError).Reason}
		}
		return nil
	}
	// Resolvers that parse addresses the way inet_aton does read
	// "2130706433", "0x7f.1" and "127.1" as 127.0.0.1.
	if a, ok := parseInetAton(host); ok {
		if err := p.Check(a); err != nil {
			return &RefusedError{Host: host, Reason: err.(*RefusedError).Reason + " (" + a.String() + ")"}
		}
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if p.Check(netip.IPv6Loopback()) != nil || p.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1})) != nil {
			return &RefusedError{Host: host, Reason: "a loopback name"}
		}
	}
	return nil
}

// parseInetAton parses the IPv4 forms of inet_aton(3): one to four parts
// separated by dots, each decimal, octal (leading 0) or hex (leading 0x),
// the last part filling the remaining bytes.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, part := range parts {
		base, digits := 10, part
		switch {
		case len(part) > 2 && (part[:2] == "0x" || part[:2] == "0X"):
			base, digits = 16, part[2:]
		case len(part) > 1 && part[0] == '0':
			base, digits = 8, part[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil || digits == "" || strings.ContainsAny(digits, "+-_") {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// String lists the allowed prefixes, comma-separated.
func (p *Policy) String() string {
	s := make([]string, len(p.Allow))
	for i, pre := range p.Allow {
		s[i] = pre.String()
	}
	return strings.Join(s, ",")
}

// Set reads a flag value: "all" (or "true") allows every address, "none"
// (or "false", or "") allows public addresses only, anything else is a
// comma-separated list of prefixes (10.20.0.0/16) or addresses added to
// the allowed ones.
func (p *Policy) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "all", "true":
		p.Allow = append(p.Allow, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		return nil
	case "none", "false", "":
		p.Allow = nil
		return nil
	}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pre, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return fmt.Errorf("%q is neither a prefix such as 10.20.0.0/16 nor an address; use all, none or a comma-separated list", f)
			}
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		p.Allow = append(p.Allow, pre.Masked())
	}
	return nil
}

// Type names the flag's value in help output.
func (p *Policy) Type() string { return "all|prefixes" }
