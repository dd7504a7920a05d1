package local

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/slipway/slipway/internal/backoff"
)

// procRecord is one dyno init this server started, as kept in dynos.json:
// enough to adopt the dyno after a restart (its app, name, release, spec key
// and address) or, failing that, to stop it. StartTicks is field 22 of
// /proc/<pid>/stat (start time in clock ticks since boot): with the pid it
// identifies the process, so a pid the kernel gave to another process since
// is never signalled.
type procRecord struct {
	ID          string    `json:"id,omitempty"` // the process's folder and cgroup name
	App         string    `json:"app"`
	AppKey      string    `json:"app_key,omitempty"`
	Dyno        string    `json:"dyno"`
	DynoID      string    `json:"dyno_id,omitempty"`
	PID         int       `json:"pid"`
	PGID        int       `json:"pgid"`
	StartTicks  uint64    `json:"start_ticks"`
	Started     time.Time `json:"started"`
	Port        int       `json:"port,omitempty"`
	Addr        string    `json:"addr,omitempty"`
	NetHost     string    `json:"net_host,omitempty"` // the host side of its veth, with isolation
	Release     relRef    `json:"release"`
	SpecKey     string    `json:"spec_key,omitempty"`
	Command     string    `json:"command,omitempty"`
	Healthcheck string    `json:"healthcheck,omitempty"`
	Size        string    `json:"size,omitempty"` // the formation's size, which set its limits
}

// stateFile is DataDir/dynos.json, rewritten (atomically) whenever a process
// starts or ends.
type stateFile struct {
	mu    sync.Mutex
	path  string
	procs map[int]procRecord
}

func (s *stateFile) add(rec procRecord, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs[rec.PID] = rec
	if err := s.writeLocked(); err != nil {
		log.Warn("local runtime: writing dynos.json", "err", err)
	}
}

func (s *stateFile) remove(pid int, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.procs, pid)
	if err := s.writeLocked(); err != nil {
		log.Warn("local runtime: writing dynos.json", "err", err)
	}
}

func (s *stateFile) write() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked()
}

func (s *stateFile) writeLocked() error {
	recs := make([]procRecord, 0, len(s.procs))
	for _, r := range s.procs {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].PID < recs[j].PID })
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(s.path))
}

// readProcStat reads /proc/<pid>/stat.
func readProcStat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// procStartTicks returns the start time of pid from /proc, 0 if unknown.
func procStartTicks(pid int) uint64 {
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return st.Starttime
}

// stillRuns reports whether rec's process is alive: same pid, same start
// time, same process group, not a zombie.
func stillRuns(rec procRecord) bool {
	st, err := readProcStat(rec.PID)
	return err == nil && st.Starttime == rec.StartTicks && st.PGRP == rec.PGID && st.State != "Z" && st.State != "X"
}

// readRecords returns the processes listed in the state file at path; a
// missing or unreadable file lists none.
func readRecords(path string, log *slog.Logger) []procRecord {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("local runtime: reading dynos.json", "err", err)
		return nil
	}
	var recs []procRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		log.Warn("local runtime: dynos.json is not valid; ignoring it", "err", err)
		return nil
	}
	return recs
}

// killOrphans stops the process groups of recs that still run: SIGTERM,
// then SIGKILL to those alive after grace. Records whose pid now belongs
// to another process (different start time or group) are left alone. A
// group whose leader is gone is not touched either: its id can no longer
// be checked.
func killOrphans(recs []procRecord, grace time.Duration, log *slog.Logger) {
	var alive []procRecord
	for _, rec := range recs {
		if rec.PID <= 1 || rec.PGID <= 1 || rec.StartTicks == 0 {
			continue
		}
		if !stillRuns(rec) {
			continue
		}
		log.Info("local runtime: stopping a dyno left by a previous server", "app", rec.App, "dyno", rec.Dyno, "pid", rec.PID)
		syscall.Kill(-rec.PGID, syscall.SIGTERM)
		alive = append(alive, rec)
	}
	deadline := time.Now().Add(grace)
	poll := backoff.Exponential{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond}.Sequence()
	for len(alive) > 0 && time.Now().Before(deadline) {
		time.Sleep(min(poll.Next(), time.Until(deadline)))
		still := alive[:0]
		for _, rec := range alive {
			if stillRuns(rec) {
				still = append(still, rec)
			}
		}
		alive = still
	}
	for _, rec := range alive {
		if stillRuns(rec) {
			log.Warn("local runtime: killing a dyno left by a previous server", "app", rec.App, "dyno", rec.Dyno, "pid", rec.PID)
			syscall.Kill(-rec.PGID, syscall.SIGKILL)
		}
	}
}
