package dynonet

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func mustPool(t testing.TB, cidr string) *Pool {
	t.Helper()
	p, err := NewPool(cidr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPoolValidates(t *testing.T) {
	for _, bad := range []string{"", "10.213.0.0", "fd00::/64", "10.213.0.0/29", "10.213.0.0/32", "10.213.1.0/16", "10.213.0.0/33"} {
		_, err := NewPool(bad)
		if err == nil {
			t.Errorf("NewPool(%q) accepted it", bad)
			continue
		}
		if !strings.Contains(err.Error(), "--dyno-subnet") {
			t.Errorf("NewPool(%q) error does not name the flag: %v", bad, err)
		}
	}
	if _, err := NewPool("10.213.1.0/16"); err == nil || !strings.Contains(err.Error(), "10.213.0.0/16") {
		t.Errorf("host bits set: want a hint naming 10.213.0.0/16, got %v", err)
	}
	for _, good := range []string{"10.213.0.0/16", "10.213.0.16/28", "192.0.2.0/24"} {
		if _, err := NewPool(good); err != nil {
			t.Errorf("NewPool(%q): %v", good, err)
		}
	}
}

func TestPoolTakeLowestFreeAndRelease(t *testing.T) {
	p := mustPool(t, "10.213.0.0/16")
	var ls []Lease
	for range 3 {
		l, err := p.Take()
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	want := Lease{Index: 1, Host: netip.MustParseAddr("10.213.0.5"), Dyno: netip.MustParseAddr("10.213.0.6"),
		Prefix: netip.MustParsePrefix("10.213.0.4/30")}
	if ls[1] != want {
		t.Fatalf("second lease = %+v, want %+v", ls[1], want)
	}
	p.Release(ls[1])
	p.Release(ls[1]) // twice: no effect
	if l, _ := p.Take(); l != want {
		t.Fatalf("after release, Take = %+v, want the freed %+v", l, want)
	}
	if l, _ := p.Take(); l.Index != 3 {
		t.Fatalf("next Take = index %d, want 3", l.Index)
	}
	// A lease of another pool with an index this pool holds frees nothing.
	other := mustPool(t, "10.214.0.0/16")
	ol, _ := other.Take()
	p.Release(ol)
	if l, _ := p.Take(); l.Index != 4 {
		t.Fatalf("a foreign Release freed index 0: Take = %d", l.Index)
	}
}

func TestPoolExhaustion(t *testing.T) {
	p := mustPool(t, "10.213.0.16/28")
	for i := range 4 {
		l, err := p.Take()
		if err != nil {
			t.Fatalf("take %d of 4: %v", i, err)
		}
		if !netip.MustParsePrefix("10.213.0.16/28").Contains(l.Dyno) {
			t.Fatalf("lease %+v outside the pool", l)
		}
	}
	if _, err := p.Take(); err == nil || !strings.Contains(err.Error(), "--dyno-subnet") {
		t.Fatalf("fifth Take: want an exhaustion error naming --dyno-subnet, got %v", err)
	}
	p.Release(Lease{Index: 2, Host: netip.MustParseAddr("10.213.0.25"), Dyno: netip.MustParseAddr("10.213.0.26"), Prefix: netip.MustParsePrefix("10.213.0.24/30")})
	if l, err := p.Take(); err != nil || l.Index != 2 {
		t.Fatalf("Take after release = %+v, %v; want index 2", l, err)
	}
}

func TestPoolReserve(t *testing.T) {
	p := mustPool(t, "10.213.0.0/16")
	l, err := p.Reserve("10.213.1.1")
	if err != nil {
		t.Fatal(err)
	}
	if l.Index != 64 || l.Dyno != netip.MustParseAddr("10.213.1.2") || l.HostLink() != "swy40" {
		t.Fatalf("Reserve = %+v (%s)", l, l.HostLink())
	}
	for _, bad := range []string{"10.213.1.1", "10.213.1.2", "10.213.1.4", "10.214.0.1", "nope", "fd00::1"} {
		if _, err := p.Reserve(bad); err == nil {
			t.Errorf("Reserve(%q) accepted", bad)
		}
	}
	// Take skips reserved leases and goes on from the lowest free.
	if l, _ := p.Take(); l.Index != 0 {
		t.Fatalf("Take after Reserve = %d, want 0", l.Index)
	}
	p.Release(l)
	if _, err := p.Reserve("10.213.1.1"); err != nil {
		t.Fatalf("Reserve after Release: %v", err)
	}
}

func TestPoolConcurrentTakesAreUnique(t *testing.T) {
	p := mustPool(t, "10.213.0.0/22") // 256 leases
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 32 {
				l, err := p.Take()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[l.Index] {
					t.Errorf("index %d leased twice", l.Index)
				}
				seen[l.Index] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 256 {
		t.Fatalf("%d unique leases, want 256", len(seen))
	}
	if _, err := p.Take(); err == nil {
		t.Fatal("Take on a full pool succeeded")
	}
}

func TestHostLinkNames(t *testing.T) {
	p := mustPool(t, "10.0.0.0/8") // the largest index a sane pool has
	for _, c := range []struct {
		i    int
		want string
	}{{0, "swy0"}, {10, "swya"}, {255, "swyff"}, {p.n - 1, "swy3fffff"}} {
		l := p.lease(c.i)
		if got := l.HostLink(); got != c.want || len(got) > 15 {
			t.Errorf("HostLink(%d) = %q, want %q (<= 15 chars)", c.i, got, c.want)
		}
	}
	// Even a /0 (absurd, but accepted by the /28 rule) fits Linux's limit.
	if n := len(Lease{Index: 1<<30 - 1}.HostLink()); n > 15 {
		t.Errorf("largest possible name has %d chars", n)
	}
}
