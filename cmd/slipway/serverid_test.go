package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestServerID_KeptInTheDataDir: a data dir keeps its server's id across
// restarts, servers starting at once on a fresh data dir agree on one,
// and another data dir gets another id.
func TestServerID_KeptInTheDataDir(t *testing.T) {
	dir := t.TempDir()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := serverID(dir)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !strings.HasPrefix(id, "srv-") {
			t.Fatalf("ids on one data dir = %v", ids)
		}
	}
	if again, err := serverID(dir); err != nil || again != ids[0] {
		t.Fatalf("after a restart: %q, %v; want %q", again, err, ids[0])
	}
	fi, err := os.Stat(filepath.Join(dir, "server-id"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server-id: %v, %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left in the data dir: %v", entries)
	}
	if other, err := serverID(t.TempDir()); err != nil || other == ids[0] {
		t.Fatalf("another data dir: %q, %v", other, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server-id"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := serverID(dir); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("an empty server-id: %v", err)
	}
}
