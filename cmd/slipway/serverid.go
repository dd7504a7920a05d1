package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// serverID names this server in app leases and in the builds it runs: a
// random id kept in the data dir (server-id), made the first time the
// data dir is used. A server restarted on its data dir takes its own
// leases back at once; servers on different data dirs never share a
// name, even with the same host name and path on different machines.
func serverID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "server-id")
	if id, err := readServerID(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	// Written aside and linked into place, so the file is there whole or
	// not at all, and a server starting at the same moment on the same
	// data dir reads the id that won.
	tmp, err := os.CreateTemp(dataDir, ".server-id-*")
	if err != nil {
		return "", fmt.Errorf("server id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString("srv-" + uuid.NewString() + "\n")
	if err = errors.Join(err, tmp.Sync(), tmp.Close()); err != nil {
		return "", fmt.Errorf("server id: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("server id: %w", err)
	}
	return readServerID(path)
}

func readServerID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 128 {
		return "", fmt.Errorf("%s does not hold a server id; remove it and start again to make a new one", path)
	}
	return id, nil
}
