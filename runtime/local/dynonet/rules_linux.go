//go:build linux

package dynonet

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// tableName names the nftables table Slipway owns, both inside each dyno's
// namespace and on the host. Family inet, so IPv6 is covered too: the veth
// ends get IPv6 link-local addresses the moment they are up, and an ip-only
// table would let a dyno reach the host's [::] services through them.
const tableName = "slipway"

// noEgressTo are the destinations a dyno with egress still may not open
// connections to: loopback, the private ranges (the host's LAN, other
// dynos), link-local (cloud metadata services at 169.254.169.254) and shared
// CGNAT space. The lease's own host address is added per dyno.
var noEgressTo = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

// dynoRules replaces the slipway table inside a dyno's namespace (c is a
// connection into it) in one transaction:
//
//	chain output { type filter hook output priority filter; policy drop;
//	  oifname "lo" accept
//	  ct state established,related accept
//	  # with egress only:
//	  ip daddr { noEgressTo, l.Host } reject
//	  meta nfproto ipv4 accept
//	  reject with icmpx admin-prohibited }
//
// The dyno answers connections (the router's) but opens none. The final
// reject (the policy drop is only a backstop) makes a forbidden connect fail
// at once with "no route to host" instead of hanging for two minutes of SYN
// retries, so an app that dials the host's database learns why right away.
func dynoRules(c *nftables.Conn, l Lease, o Options) error {
	t := replaceTable(c)
	drop := nftables.ChainPolicyDrop
	out := c.AddChain(&nftables.Chain{
		Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &drop,
	})
	add := func(parts ...[]expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: join(parts)}) }
	add(ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, "lo\x00"), accept())
	add(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	if o.Egress {
		for _, p := range append(noEgressTo, netip.PrefixFrom(l.Host, 32)) {
			add(ipv4(), addrIn(16, p), reject())
		}
		add(ipv4(), accept())
	}
	add(reject())
	return c.Flush()
}

// hostRules replaces the slipway table on the host in one transaction. It
// matches dyno links by name ("swy*") so one table serves every dyno:
//
//	chain input { type filter hook input priority filter;
//	  iifname "swy*" ct state established,related accept
//	  iifname "swy*" reject with icmpx admin-prohibited }
//	chain forward { type filter hook forward priority filter;
//	  # without egress:
//	  iifname "swy*" drop
//	  oifname "swy*" drop
//	  # with egress (cidr valid):
//	  iifname "swy*" oifname "swy*" drop
//	  oifname "swy*" ct state established,related accept
//	  oifname "swy*" drop }
//	chain postrouting { type nat hook postrouting priority srcnat;  # egress only
//	  ip saddr cidr oifname != "swy*" masquerade }
//
// The input chain is the host's own guard: the dyno's rules already stop it
// dialing the host, but with egress a dyno could otherwise reach host
// services on 0.0.0.0 through the host's public address, and this holds
// even if a dyno ever ran with CAP_NET_ADMIN. The forward chain keeps
// traffic inside Slipway's namespaces when the host forwards for other
// reasons (ip_forward=1 for containers): nobody on the LAN can route to a
// dyno, and no dyno to another.
func hostRules(c *nftables.Conn, cidr netip.Prefix) error {
	t := replaceTable(c)
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) func(...[]expr.Any) {
		ch := c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio})
		return func(parts ...[]expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: join(parts)}) }
	}
	in := chain("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	in(ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, linkPrefix), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	in(ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, linkPrefix), reject())

	fwd := chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	if !cidr.IsValid() {
		fwd(ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, linkPrefix), drop())
		fwd(ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, linkPrefix), drop())
		return c.Flush()
	}
	fwd(ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, linkPrefix), ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, linkPrefix), drop())
	fwd(ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, linkPrefix), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())
	fwd(ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, linkPrefix), drop())

	nat := chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	nat(ipv4(), addrIn(12, cidr), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, linkPrefix), []expr.Any{&expr.Masq{}})
	return c.Flush()
}

// replaceTable queues "add table; delete table; add table" so that the
// batch that follows replaces any earlier slipway table atomically: there
// is no moment without rules, and re-running it converges instead of
// piling up duplicate rules.
func replaceTable(c *nftables.Conn) *nftables.Table {
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	return c.AddTable(t)
}

// ifname matches the in- or output interface name: with name shorter than
// the register and no NUL it is a prefix match ("swy*"), with a trailing
// NUL an exact one.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: []byte(name)}}
}

// ctState matches when the connection's state has any of bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ipv4 matches IPv4 packets; it must precede addrIn in an inet table.
func ipv4() []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}}}
}

// addrIn matches the IPv4 address at off in the header (12 source,
// 16 destination) against p.
func addrIn(off uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.BigEndian.PutUint32(^uint32(0) << (32 - p.Bits())), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }
func drop() []expr.Any   { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// reject answers with ICMP admin-prohibited (ICMPv6 for IPv6), which a
// local connect reports as EHOSTUNREACH.
func reject() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}

func join(parts [][]expr.Any) []expr.Any {
	var all []expr.Any
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}
