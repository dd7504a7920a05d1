// Command scale is the scale test (make scale): three `slipway serve
// --runtime kubernetes` on one PostgreSQL schema, N apps with 2–3 web
// dynos each on a k8s-lab cluster, two releases of every app in waves of
// SCALE_INFLIGHT in flight with one server killed (SIGKILL) during the
// second, then a rolling restart of SCALE_RESTARTS apps and an idle
// minute. It prints the figures, asserts that every release succeeded
// with contiguous versions, that every app ends with exactly its
// formation's pods and that nothing is left pending, and with
// SCALE_BENCHMARKS appends a section to that file.
//
// scripts/scale.sh (`make scale`) starts the cluster and runs it; see
// there for the environment it reads.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// config is what the environment sets.
type config struct {
	Apps       int           // SCALE_APPS
	InFlight   int           // SCALE_INFLIGHT: releases in flight at once
	Restarts   int           // SCALE_RESTARTS: apps restarted in the third wave
	Idle       time.Duration // SCALE_IDLE: the idle phase, for requests per idle app
	Scrape     time.Duration // SCALE_SCRAPE: how often each server's /metrics is read
	LeaseTTL   time.Duration // SCALE_LEASE_TTL: the servers' --lease-ttl
	Kubeconfig string        // KUBECONFIG
	Binary     string        // SLIPWAY_BIN: the slipway binary
	Database   string        // SCALE_DATABASE_URL: PostgreSQL; a fresh schema is made in it
	WorkDir    string        // SCALE_WORKDIR: data dirs, slug dir and server logs
	Benchmarks string        // SCALE_BENCHMARKS: file to append the section to ("" none)
	Command    string        // SCALE_COMMAND: the command line shown in that section
	Keep       bool          // SCALE_KEEP: keep the schema and namespace
}

func loadConfig() (config, error) {
	c := config{
		Apps: 1000, InFlight: 100, Restarts: 100, Idle: time.Minute, Scrape: 3 * time.Second, LeaseTTL: 15 * time.Second,
		Kubeconfig: os.Getenv("KUBECONFIG"), Binary: os.Getenv("SLIPWAY_BIN"),
		Database: envOr("SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		WorkDir:  os.Getenv("SCALE_WORKDIR"), Benchmarks: os.Getenv("SCALE_BENCHMARKS"),
		Command: os.Getenv("SCALE_COMMAND"), Keep: os.Getenv("SCALE_KEEP") != "",
	}
	var err error
	intVar := func(name string, p *int) {
		if s := os.Getenv(name); s != "" && err == nil {
			n, e := strconv.Atoi(s)
			if e != nil || n < 1 {
				err = fmt.Errorf("%s=%q: want a positive number", name, s)
			}
			*p = n
		}
	}
	durVar := func(name string, p *time.Duration) {
		if s := os.Getenv(name); s != "" && err == nil {
			d, e := time.ParseDuration(s)
			if e != nil || d < 0 {
				err = fmt.Errorf("%s=%q: want a duration", name, s)
			}
			*p = d
		}
	}
	intVar("SCALE_APPS", &c.Apps)
	intVar("SCALE_INFLIGHT", &c.InFlight)
	intVar("SCALE_RESTARTS", &c.Restarts)
	durVar("SCALE_IDLE", &c.Idle)
	durVar("SCALE_LEASE_TTL", &c.LeaseTTL)
	durVar("SCALE_SCRAPE", &c.Scrape)
	if err != nil {
		return c, err
	}
	if c.Scrape <= 0 {
		return c, fmt.Errorf("SCALE_SCRAPE must be a positive duration")
	}
	if c.Restarts > c.Apps {
		c.Restarts = c.Apps
	}
	switch {
	case c.Kubeconfig == "":
		return c, fmt.Errorf("KUBECONFIG must name the cluster's admin kubeconfig")
	case c.Binary == "":
		return c, fmt.Errorf("SLIPWAY_BIN must name a slipway binary")
	case c.WorkDir == "":
		if c.WorkDir, err = os.MkdirTemp("", "slipway-scale-"); err != nil {
			return c, err
		}
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "scale: an assertion failed (see above)")
		os.Exit(1)
	}
}

// logf prints a progress line with the time since the run began.
func (s *scale) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(s.began).Seconds(), fmt.Sprintf(format, args...))
}

// freshSchema creates a schema of its own in the database at base and
// returns a URL that uses it, and what drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	schema := fmt.Sprintf("scale_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		if a, err := sql.Open("pgx", base); err == nil {
			a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, drop, nil
}
