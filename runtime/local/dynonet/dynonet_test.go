//go:build linux

package dynonet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The root tests run in a sandbox: TestMain re-executes the test binary in
// a fresh network namespace that plays the host. So they never touch the
// machine's real network (other engineers' dynos, its ip_forward), leave
// nothing behind even when killed, and send traffic only to loopback and
// to veths inside namespaces they made. Dynos are the test binary again,
// in helper mode, in a network namespace of their own under the sandbox.
const (
	sandboxEnv = "DYNONET_TEST_SANDBOX" // "1" inside the sandbox, else why there is none
	helperEnv  = "DYNONET_TEST_HELPER"  // "dyno": act as a dyno process
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "dyno" {
		os.Exit(dynoMain())
	}
	if os.Getenv(sandboxEnv) == "" {
		if os.Geteuid() != 0 {
			os.Setenv(sandboxEnv, "not root")
		} else {
			cmd := exec.Command(os.Args[0], os.Args[1:]...)
			cmd.Env = append(os.Environ(), sandboxEnv+"=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
			err := cmd.Run()
			var exit *exec.ExitError
			if err == nil || errors.As(err, &exit) {
				os.Exit(cmd.ProcessState.ExitCode())
			}
			os.Setenv(sandboxEnv, fmt.Sprintf("cannot make a network namespace: %v", err))
		}
	}
	os.Exit(m.Run())
}

var (
	probeOnce sync.Once
	probeErr  error
)

// needNet skips t unless it runs as root in the sandbox with veth and
// nf_tables working, saying which is missing.
func needNet(t testing.TB) {
	t.Helper()
	if why := os.Getenv(sandboxEnv); why != "1" {
		t.Skipf("needs root to make network namespaces: %s", why)
	}
	probeOnce.Do(func() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			probeErr = fmt.Errorf("netlink: %w", err)
			return
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}
		if err := netlink.LinkAdd(v); err != nil {
			probeErr = fmt.Errorf("veth: %w", err)
			return
		}
		_ = netlink.LinkDel(v)
		c, err := nftables.New()
		if err == nil {
			c.AddTable(&nftables.Table{Name: "probe", Family: nftables.TableFamilyINet})
			err = c.Flush()
		}
		if err == nil {
			c.DelTable(&nftables.Table{Name: "probe", Family: nftables.TableFamilyINet})
			err = c.Flush()
		}
		if err != nil {
			probeErr = fmt.Errorf("nf_tables: %w", err)
		}
	})
	if probeErr != nil {
		t.Skipf("kernel support missing: %v", probeErr)
	}
}

// dynoMain is a dyno: it drops to nobody (no CAP_NET_ADMIN, as real dynos
// run) and answers one-line commands on stdin with "ok …" or "err …":
//
//	listen ADDR  listen on ADDR:0, greet each connection with "dyno"; ok PORT
//	dial ADDR    connect, read the greeting; ok GREETING
//	nft          try to delete the slipway table in its own namespace
func dynoMain() int {
	for _, drop := range []func() error{
		func() error { return syscall.Setgroups(nil) },
		func() error { return syscall.Setgid(65534) },
		func() error { return syscall.Setuid(65534) },
	} {
		if err := drop(); err != nil {
			fmt.Println("err drop privileges:", err)
			return 1
		}
	}
	fmt.Println("ok ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		reply, err := dynoDo(strings.Fields(in.Text()))
		if err != nil {
			fmt.Println("err", err)
		} else {
			fmt.Println("ok", reply)
		}
	}
	return 0
}

func dynoDo(f []string) (string, error) {
	switch {
	case len(f) == 2 && f[0] == "listen":
		ln, err := net.Listen("tcp", net.JoinHostPort(f[1], "0"))
		if err != nil {
			return "", err
		}
		go serve(ln)
		return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), nil
	case len(f) == 2 && f[0] == "dial":
		return dialGreeting(f[1])
	case len(f) == 1 && f[0] == "nft":
		c, err := nftables.New()
		if err != nil {
			return "", err
		}
		c.DelTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyINet})
		return "deleted the rules", c.Flush()
	}
	return "", fmt.Errorf("bad command %q", f)
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, "dyno")
		c.Close()
	}
}

// dialGreeting connects to addr and returns the first line it says. The
// timeout only bounds a broken test: blocked connects fail at once, since
// the rules reject rather than drop.
func dialGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

// dyno is a helper process attached to the sandbox by Attach.
type dyno struct {
	Lease
	pid int
	in  io.Writer
	out *os.File
	rd  *bufio.Reader
}

// startDyno runs a helper in a new network namespace and attaches it with
// a lease from p; cleanups detach, release and kill it.
func startDyno(t testing.TB, p *Pool, o Options) *dyno {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=dyno")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	d := &dyno{pid: cmd.Process.Pid, in: in, out: out.(*os.File), rd: bufio.NewReader(out)}
	if d.Lease, err = p.Take(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Release(d.Lease) })
	if err := Attach(d.pid, d.Lease, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Detach(d.Lease); err != nil {
			t.Error(err)
		}
	})
	if _, err := d.ask(t, ""); err != nil { // the "ready" line
		t.Fatal(err)
	}
	return d
}

// ask sends a command (none: just read) and returns the reply, or the
// helper's error.
func (d *dyno) ask(t testing.TB, cmd string) (string, error) {
	t.Helper()
	if cmd != "" {
		if _, err := fmt.Fprintln(d.in, cmd); err != nil {
			t.Fatalf("dyno %d: %v", d.pid, err)
		}
	}
	d.out.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := d.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("dyno %d: no answer to %q: %v", d.pid, cmd, err)
	}
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", errors.New(strings.TrimPrefix(line, "err "))
}

// listen makes the dyno listen on addr and returns addr:port.
func (d *dyno) listen(t testing.TB, addr netip.Addr) string {
	t.Helper()
	port, err := d.ask(t, "listen "+addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(addr.String(), port)
}

// mustNotReach asserts the dyno cannot open a connection to addr, and that
// it learns so at once, with the error the rules give (wantErr).
func (d *dyno) mustNotReach(t testing.TB, addr, wantErr, why string) {
	t.Helper()
	start := time.Now()
	got, err := d.ask(t, "dial "+addr)
	if err == nil {
		t.Errorf("dyno %s reached %s (%s), which said %q", d.Dyno, addr, why, got)
		return
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Errorf("dyno %s dialing %s (%s): got %v, want %q", d.Dyno, addr, why, err, wantErr)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("dyno %s dialing %s took %v to fail; rejected connects should fail at once", d.Dyno, addr, el)
	}
}

func (d *dyno) nft(t testing.TB) *nftables.Conn {
	t.Helper()
	ns, err := netns.GetFromPid(d.pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hostListen listens on addr:port (port 0: any) in the sandbox host and
// greets with "host"; it returns the port.
func hostListen(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "host")
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

const rejected = "no route to host" // EHOSTUNREACH from reject with icmpx admin-prohibited

func TestAttachIsolatesDynos(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	if err := EnableEgress(p); err != nil { // forwarding on: routing is no longer what keeps dynos apart
		t.Fatal(err)
	}
	// Host services: one on all addresses (like :2024 here) and a stand-in
	// for PostgreSQL on the host's loopback.
	anyPort := hostListen(t, "0.0.0.0:0")
	hostListen(t, "127.0.0.1:5432")
	if g, err := dialGreeting("127.0.0.1:5432"); err != nil || g != "host" {
		t.Fatalf("the host itself cannot reach its 127.0.0.1:5432: %q, %v", g, err)
	}

	a := startDyno(t, p, Options{})
	b := startDyno(t, p, Options{Egress: true})
	aApp, bApp := a.listen(t, a.Dyno), b.listen(t, b.Dyno)

	// (1) The router (the host) reaches each app on its own address.
	for _, app := range []string{aApp, bApp} {
		if g, err := dialGreeting(app); err != nil || g != "dyno" {
			t.Fatalf("host dialing the app at %s: %q, %v", app, g, err)
		}
	}
	// A dyno's own loopback works.
	if g, err := a.ask(t, "dial "+a.listen(t, netip.MustParseAddr("127.0.0.1"))); err != nil || g != "dyno" {
		t.Fatalf("dyno dialing its own loopback: %q, %v", g, err)
	}

	// (2) Nothing outside the dyno is reachable from it, with or without egress.
	for _, d := range []*dyno{a, b} {
		d.mustNotReach(t, net.JoinHostPort(d.Host.String(), anyPort), rejected, "host service on 0.0.0.0")
		d.mustNotReach(t, "127.0.0.1:5432", "connection refused", "its own loopback, not the host's PostgreSQL")
		d.mustNotReach(t, net.JoinHostPort(d.Host.String(), "5432"), rejected, "host loopback service via the gateway")
	}
	a.mustNotReach(t, bApp, "network is unreachable", "another dyno, without egress: no route")
	b.mustNotReach(t, aApp, rejected, "another dyno, with egress")

	// The dyno's uid cannot lift its rules.
	if _, err := a.ask(t, "nft"); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("unprivileged dyno deleting its nftables table: want EPERM, got %v", err)
	}
	a.mustNotReach(t, net.JoinHostPort(a.Host.String(), anyPort), rejected, "after its failed attempt to lift the rules")
}

// TestEachLayerBlocks shows that the dyno's rules and the host's guard each
// stop a dyno from reaching a host service on its own, and (the control)
// that without both the connection goes through: so the failures above are
// the rules, not routing.
func TestEachLayerBlocks(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	port := hostListen(t, "0.0.0.0:0")
	d := startDyno(t, p, Options{})
	target := net.JoinHostPort(d.Host.String(), port)
	c := d.nft(t)
	table := &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}
	hc, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ensureHostRules(); err != nil { // for the tests after this one
			t.Error(err)
		}
	})

	d.mustNotReach(t, target, rejected, "both layers")

	c.DelTable(table)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	d.mustNotReach(t, target, rejected, "host guard alone")

	if err := dynoRules(c, d.Lease, Options{}); err != nil {
		t.Fatal(err)
	}
	hc.DelTable(table)
	if err := hc.Flush(); err != nil {
		t.Fatal(err)
	}
	d.mustNotReach(t, target, rejected, "dyno rules alone")

	c.DelTable(table)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if g, err := d.ask(t, "dial "+target); err != nil || g != "host" {
		t.Fatalf("control: without any rules the dyno should reach %s: %q, %v", target, g, err)
	}
}

func TestEgressInstallsRouteAndNAT(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	if err := EnableEgress(p); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("ip_forward = %q, %v; want 1", b, err)
	}
	host, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if n := ruleCount(t, host, "postrouting"); n != 1 {
		t.Fatalf("host postrouting has %d rules, want the masquerade", n)
	}

	with, without := startDyno(t, p, Options{Egress: true}), startDyno(t, p, Options{})
	if gw := defaultRoute(t, with); gw != with.Host.String() {
		t.Fatalf("egress dyno's default route via %q, want %s", gw, with.Host)
	}
	if gw := defaultRoute(t, without); gw != "" {
		t.Fatalf("dyno without egress has a default route via %s", gw)
	}
	// lo, established, 7 refused ranges, accept IPv4, reject.
	if n := ruleCount(t, with.nft(t), "output"); n != 2+len(noEgressTo)+1+1+1 {
		t.Fatalf("egress dyno has %d output rules", n)
	}
	if n := ruleCount(t, without.nft(t), "output"); n != 3 {
		t.Fatalf("dyno without egress has %d output rules, want lo, established, reject", n)
	}
	// No traffic leaves: the sandbox has no link off the machine, and
	// this test sends nothing.
}

func ruleCount(t testing.TB, c *nftables.Conn, chain string) int {
	t.Helper()
	tb := &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}
	rules, err := c.GetRules(tb, &nftables.Chain{Name: chain, Table: tb})
	if err != nil {
		t.Fatalf("rules of %s: %v", chain, err)
	}
	return len(rules)
}

// defaultRoute returns the gateway of d's default route, "" if none.
func defaultRoute(t testing.TB, d *dyno) string {
	t.Helper()
	ns, err := netns.GetFromPid(d.pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			return r.Gw.String()
		}
	}
	return ""
}

func linkExists(t testing.TB, name string) bool {
	t.Helper()
	_, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDetachAndSweep(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	d := startDyno(t, p, Options{})
	if !linkExists(t, d.HostLink()) {
		t.Fatalf("no host link %s after Attach", d.HostLink())
	}
	if err := Detach(d.Lease); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, d.HostLink()) {
		t.Fatalf("host link %s still there after Detach", d.HostLink())
	}
	if err := Detach(d.Lease); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	// The peer went with it: the app's address is gone.
	if _, err := d.ask(t, "listen "+d.Dyno.String()); err == nil {
		t.Fatal("dyno still has its address after Detach")
	}

	// Sweep: a kept dyno survives; a leftover veth named like a host link
	// goes; links that only look similar stay.
	kept := startDyno(t, p, Options{})
	leftover := Lease{Index: 0x7e}
	for _, l := range []netlink.Link{
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: leftover.HostLink()}, PeerName: "peer7e"},
		&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "swy7f"}}, // right name, not a veth
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "swy07"}, PeerName: "swyz"},
	} {
		if err := netlink.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = netlink.LinkDel(l) })
	}
	if err := Sweep([]Lease{kept.Lease}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{kept.HostLink(): true, leftover.HostLink(): false, "swy7f": true, "swy07": true, "swyz": true} {
		if got := linkExists(t, name); got != want {
			t.Errorf("after Sweep, link %s exists = %v, want %v", name, got, want)
		}
	}
	if g, err := dialGreeting(kept.listen(t, kept.Dyno)); err != nil || g != "dyno" {
		t.Fatalf("kept dyno unreachable after Sweep: %q, %v", g, err)
	}
}

func TestDetachAfterDynoExit(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	d := startDyno(t, p, Options{})
	if _, err := d.ask(t, "bogus"); err == nil {
		t.Fatal("helper accepted a bogus command")
	}
	syscall.Kill(d.pid, syscall.SIGKILL)
	// The kernel removes the pair when the namespace dies, asynchronously.
	waitFor(t, 10*time.Second, "the veth outlived its dyno's namespace", func() bool { return !linkExists(t, d.HostLink()) })
	if err := Detach(d.Lease); err != nil {
		t.Fatalf("Detach of a dead dyno: %v", err)
	}
}

func TestAttachFailsCleanly(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	d := startDyno(t, p, Options{})

	l, _ := p.Take()
	defer p.Release(l)
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := Attach(cmd.Process.Pid, l, Options{}); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Attach to a gone pid: %v", err)
	}
	if err := Attach(d.pid, Lease{}, Options{}); err == nil {
		t.Fatal("Attach accepted a zero lease")
	}
	// The same lease twice: refused, and the first attachment still works.
	err := Attach(d.pid, d.Lease, Options{})
	if err == nil || !strings.Contains(err.Error(), "Sweep") {
		t.Fatalf("second Attach of one lease: %v", err)
	}
	if g, err := dialGreeting(d.listen(t, d.Dyno)); err != nil || g != "dyno" {
		t.Fatalf("first attachment broken by the failed second: %q, %v", g, err)
	}
	if linkExists(t, l.HostLink()) {
		t.Fatalf("failed Attach left %s", l.HostLink())
	}
}

func TestIsHostLink(t *testing.T) {
	for name, want := range map[string]bool{"swy0": true, "swy1f": true, "swy3fffff": true,
		"swy": false, "swy01": false, "swyA": false, "swy-1": false, "eth0": false, "swyg": false} {
		if got := isHostLink(name); got != want {
			t.Errorf("isHostLink(%q) = %v", name, got)
		}
	}
}

// BenchmarkAttach measures Attach (veth, addresses, rules) of one dyno; the
// Detach between rounds is not counted.
func BenchmarkAttach(b *testing.B) {
	needNet(b)
	p := mustPool(b, "10.213.0.0/16")
	for _, o := range []Options{{}, {Egress: true}} {
		b.Run(fmt.Sprintf("egress=%v", o.Egress), func(b *testing.B) {
			d := startDyno(b, p, o)
			for b.Loop() {
				b.StopTimer()
				if err := Detach(d.Lease); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := Attach(d.pid, d.Lease, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFence: once the subnet is fenced, the host dialing an address of it
// that no dyno holds is refused at once, not sent off by the default route;
// an attached dyno is still reached on its own address.
func TestFence(t *testing.T) {
	needNet(t)
	p := mustPool(t, "10.213.0.0/16")
	// A default route, as a machine has: without the fence, traffic for a
	// gone dyno would leave by it.
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: lo.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}); err != nil {
		t.Fatal(err)
	}
	// The control: unfenced, the dial is not refused for want of a route.
	if c, err := net.DialTimeout("tcp", "10.213.0.6:5000", 300*time.Millisecond); err == nil {
		c.Close()
	} else if strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("before the fence the dial already failed for want of a route: %v", err)
	}
	for range 2 { // again: replacing is harmless
		if err := Fence(p); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := dialGreeting("10.213.0.6:5000"); err == nil || !strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("dialing an address no dyno holds: %v, want no route to host", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %s; it should be at once", took)
	}
	d := startDyno(t, p, Options{})
	if g, err := dialGreeting(d.listen(t, d.Dyno)); err != nil || g != "dyno" {
		t.Fatalf("host dialing an attached dyno behind the fence: %q, %v", g, err)
	}
}
