package egress_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/internal/egress"
)

// These tests classify addresses and dial only loopback. A dial to any
// other address is one the Control hook refuses before the socket
// connects, so no packet leaves the machine.

func TestPolicy_Check(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" when allowed
	}{
		{"127.0.0.1", "a loopback address"},
		{"127.5.6.7", "a loopback address"},
		{"::1", "a loopback address"},
		{"::ffff:127.0.0.1", "a loopback address"},
		{"0.0.0.0", "the unspecified address"},
		{"::", "the unspecified address"},
		{"10.1.2.3", "a private address"},
		{"172.16.0.1", "a private address"},
		{"172.31.255.254", "a private address"},
		{"192.168.1.1", "a private address"},
		{"fc00::1", "a private address"},
		{"fd12:3456::1", "a private address"},
		{"169.254.169.254", "a link-local address"},
		{"fe80::1", "a link-local address"},
		{"fe80::1%eth0", "a link-local address"},
		{"224.0.0.1", "a link-local address"},
		{"239.1.2.3", "a multicast address"},
		{"ff02::1", "a link-local address"},
		{"100.64.0.1", "not a public address"},
		{"0.1.2.3", "not a public address"},
		{"255.255.255.255", "not a public address"},
		{"198.18.0.1", "not a public address"},
		{"2001:db8::1", "not a public address"},
		{"fec0::1", "not a public address"},
		{"::7f00:1", "not a public address"},
		{"64:ff9b::a01:203", "a private address"}, // NAT64 of 10.1.2.3
		{"64:ff9b::7f00:1", "a loopback address"}, // NAT64 of 127.0.0.1
		{"2002:a00:1::1", "a private address"},    // 6to4 of 10.0.0.1
		{"2002:c0a8:101::", "a private address"},  // 6to4 of 192.168.1.1
		{"93.184.216.34", ""},                     // public (only classified, never dialled)
		{"172.32.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::5db8:d822", ""}, // NAT64 of 93.184.216.34
	}
	var p egress.Policy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := p.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *egress.RefusedError
			if !errors.As(err, &re) || !strings.HasPrefix(re.Reason, tt.reason) {
				t.Fatalf("Check(%s) = %v, want refused as %q", tt.addr, err, tt.reason)
			}
			if !strings.Contains(err.Error(), "connects only to public addresses") {
				t.Fatalf("message does not say why: %v", err)
			}
		})
	}
}

// TestPolicy_Check_ThisServersPublicAddress: a public address assigned to
// one of the server's interfaces is refused (dynos and services may
// listen on it); other public addresses are not.
func TestPolicy_Check_ThisServersPublicAddress(t *testing.T) {
	p := egress.Policy{InterfaceAddrs: func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("93.184.216.34"), Mask: net.CIDRMask(24, 32)}}, nil
	}}
	err := p.Check(netip.MustParseAddr("93.184.216.34"))
	var re *egress.RefusedError
	if !errors.As(err, &re) || re.Reason != "an address of this server" {
		t.Fatalf("the server's own address: %v", err)
	}
	if err := p.CheckURL("http://93.184.216.34:20001/"); !egress.IsRefused(err) {
		t.Fatalf("CheckURL of the server's own address: %v", err)
	}
	if err := p.Check(netip.MustParseAddr("93.184.216.35")); err != nil {
		t.Fatalf("a neighbour's address: %v", err)
	}
	broken := egress.Policy{InterfaceAddrs: func() ([]net.Addr, error) { return nil, errors.New("no netlink") }}
	if err := broken.Check(netip.MustParseAddr("93.184.216.35")); !egress.IsRefused(err) {
		t.Fatalf("with interfaces unknown, a public address passed: %v", err)
	}
	p.Set("93.184.216.34")
	if err := p.Check(netip.MustParseAddr("93.184.216.34")); err != nil {
		t.Fatalf("opened by the operator: %v", err)
	}
}

func TestPolicy_Allow_WidensToItsPrefixesOnly(t *testing.T) {
	var p egress.Policy
	if err := p.Set("10.20.0.0/16, 192.168.1.5"); err != nil {
		t.Fatal(err)
	}
	for addr, ok := range map[string]bool{"10.20.1.1": true, "192.168.1.5": true, "10.21.0.1": false, "192.168.1.6": false, "127.0.0.1": false, "::ffff:10.20.0.9": true} {
		if err := p.Check(netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
	if got := p.String(); got != "10.20.0.0/16,192.168.1.5/32" {
		t.Errorf("String() = %q", got)
	}
	var all egress.Policy
	all.Set("all")
	for _, addr := range []string{"127.0.0.1", "::1", "10.0.0.1", "169.254.169.254"} {
		if err := all.Check(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("all: Check(%s) = %v", addr, err)
		}
	}
	if err := all.Set("none"); err != nil || len(all.Allow) != 0 {
		t.Errorf("none: %v %v", err, all.Allow)
	}
	if err := p.Set("10.0.0.0/33"); err == nil || !strings.Contains(err.Error(), "10.20.0.0/16") {
		t.Errorf("bad prefix: %v", err)
	}
}

func TestPolicy_Control(t *testing.T) {
	var scoped egress.Policy
	wide := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	for _, tt := range []struct {
		p       egress.Policy
		address string
		ok      bool
	}{
		{scoped, "127.0.0.1:5000", false},
		{scoped, "[::1]:5432", false},
		{scoped, "10.0.0.1:80", false},
		{scoped, "192.168.0.1:443", false},
		{scoped, "not-an-address", false},
		{wide, "127.0.0.1:5000", true},
		{wide, "10.0.0.1:80", false},
	} {
		err := tt.p.Control("tcp4", tt.address, nil)
		if (err == nil) != tt.ok || (err != nil && !egress.IsRefused(err)) {
			t.Errorf("Control(%s) with %v = %v, want allowed %v", tt.address, tt.p.Allow, err, tt.ok)
		}
	}
}

// TestDialer_RefusesBeforeConnecting dials a loopback listener and two
// private addresses: the refusal comes from the Control hook, before the
// socket connects, so the listener sees nothing and no packet leaves.
func TestDialer_RefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var scoped egress.Policy
	for _, addr := range []string{ln.Addr().String(), "10.0.0.1:80", "192.168.0.1:80", "localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)} {
		c, err := scoped.Dialer().DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s: connected", addr)
		}
		var re *egress.RefusedError
		var oe *net.OpError
		if !errors.As(err, &re) || !errors.As(err, &oe) || oe.Op != "dial" {
			t.Fatalf("dial %s = %v (%T), want a dial refused by the policy", addr, err, err)
		}
	}
	// The admin's dialer (no Control) reaches the loopback listener, and
	// its connection is the first in the accept queue: none of the scoped
	// dials above got there before it.
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("the listener's first connection came from %s, not the admin's dial from %s", first.RemoteAddr(), c.LocalAddr())
	}
}

// TestClient_RedirectsAndNamesAreCheckedWhenDialled: an allowed server
// that redirects to a refused address, and a name that resolves to a
// refused address, are both refused at dial time.
func TestClient_RedirectsAndNamesAreCheckedWhenDialled(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			port := r.Host[strings.LastIndex(r.Host, ":")+1:]
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/secret", http.StatusFound)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	only1 := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	client := only1.Client(5 * time.Second)

	resp, err := client.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatalf("allowed address: %v", err)
	}
	resp.Body.Close()
	if _, err := client.Get(srv.URL + "/redirect"); !egress.IsRefused(err) {
		t.Fatalf("redirect to 127.0.0.2: %v, want refused", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("server saw %d requests, want 2 (the redirect target is never reached)", n)
	}
	var scoped egress.Policy
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	if _, err := scoped.Client(5 * time.Second).Get(fmt.Sprintf("http://localhost:%d/ok", port)); !egress.IsRefused(err) {
		t.Fatalf("localhost through the resolver: %v, want refused", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("server saw %d requests after a refused dial", n)
	}
}

func TestPolicy_CheckURL(t *testing.T) {
	tests := []struct {
		url    string
		reason string
	}{
		{"http://127.0.0.1:5000/apps", "a loopback address"},
		{"http://[::1]:8080/", "a loopback address"},
		{"https://[::ffff:10.0.0.1]/", "a private address"},
		{"http://localhost:5080/", "a loopback name"},
		{"http://LOCALHOST./", "a loopback name"},
		{"http://hello-default.localhost:5080/x", "a loopback name"},
		{"http://0x7f000001/", "a loopback address (127.0.0.1)"},
		{"http://2130706433/", "a loopback address (127.0.0.1)"},
		{"http://127.1/", "a loopback address (127.0.0.1)"},
		{"http://0177.0.0.1/", "a loopback address (127.0.0.1)"},
		{"http://10.0.0.1/archive.tgz", "a private address"},
		{"http://169.254.169.254/latest/meta-data/", "a link-local address"},
		{"http://[fe80::1%25eth0]/", "a link-local address"},
		{"http://0.0.0.0:5000/", "the unspecified address"},
		{"https://example.com/archive.tgz", ""},
		{"https://93.184.216.34/archive.tgz", ""},
		{"https://0x5db8d822/", ""},
		{"https://localhost.example.com/", ""},
		{"https://1e100.net/", ""},
	}
	var p egress.Policy
	for _, tt := range tests {
		err := p.CheckURL(tt.url)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("CheckURL(%s) = %v, want allowed", tt.url, err)
			}
			continue
		}
		var re *egress.RefusedError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Reason, tt.reason) {
			t.Errorf("CheckURL(%s) = %v, want refused as %q", tt.url, err, tt.reason)
		}
	}
	all := egress.Policy{}
	all.Set("all")
	if err := all.CheckURL("http://localhost:5080/"); err != nil {
		t.Errorf("allow all: %v", err)
	}
}
