// Package dynoinit is the small init process that holds one dyno.
//
// The local runtime does not start a dyno's command itself. It starts its
// own binary again under the name Argv0, which runs Main: the init. With
// isolation on, the init is created in new PID, mount, network, IPC and UTS
// namespaces, so it is PID 1 of the dyno; it builds the dyno's filesystem
// (a fresh root with the host's /usr and /etc read-only, a private /tmp, a
// fresh /proc and the slug at /app through an overlay owned by the dyno's
// uid), then starts the command as that uid. Go cannot run code between
// clone and exec, so this is how Podman's conmon and Docker's tini solve it.
//
// The init, not the server, is the dyno's parent: it forwards SIGTERM and
// SIGINT to the command's process group, reaps every child, copies the
// command's output into the dyno's log file and writes how the command
// ended into a status file. A server that is killed and restarted finds the
// init still running and adopts the dyno instead of killing it.
//
// The server talks to the init over three inherited files: FD 3, a pipe
// carrying the JSON Spec and then one byte that says "go" (the server puts
// the init into its cgroup and network before sending it); FD 4, the log
// file (opened for reading and appending; see logfile.go for its lines);
// FD 5, the status file. An optional FD 6 receives a copy of the output as
// it comes (the release phase streams it); an optional FD 7 is the log's
// older generation, which the init rotates the log into.
package dynoinit

import (
	"encoding/json"
	"os"
)

// Argv0 is the argv[0] under which a Slipway binary runs the init.
const Argv0 = "slipway-dyno-init"

// File descriptors the init inherits.
const (
	FDControl = 3
	FDLog     = 4
	FDStatus  = 5
	FDLive    = 6
	FDLogPrev = 7
)

// GoByte, written after the Spec on the control pipe, lets the init start
// the command. Any other byte, or the pipe closing, makes it exit.
const GoByte = 'g'

// Spec is what the init runs and how.
type Spec struct {
	// Command runs as `/bin/sh -c Command`, as on Heroku.
	Command string `json:"command"`
	// Env is the command's whole environment.
	Env []string `json:"env"`
	// Isolate builds the dyno's own filesystem and drops to UID/GID; the
	// server started the init in new namespaces. Without it the command runs
	// in Dir as the server's user.
	Isolate bool `json:"isolate"`
	// Dir is the working directory without isolation.
	Dir string `json:"dir,omitempty"`
	// Lower is the slug (read-only, shared); Upper and Work are the dyno's
	// own overlay layers on the same filesystem; Root is an empty directory
	// that becomes the dyno's root. All are host paths, used with Isolate.
	Lower string `json:"lower,omitempty"`
	Upper string `json:"upper,omitempty"`
	Work  string `json:"work,omitempty"`
	Root  string `json:"root,omitempty"`
	// UID and GID the command runs as, with Isolate.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Nproc is RLIMIT_NPROC for the command's uid; 0 leaves it.
	Nproc uint64 `json:"nproc,omitempty"`
	// TmpBytes sizes the private /tmp; 0 is 64 MiB.
	TmpBytes int64 `json:"tmp_bytes,omitempty"`
	// Hostname of the dyno's UTS namespace, with Isolate.
	Hostname string `json:"hostname,omitempty"`
	// LogMaxBytes is the size at which the log is rotated into FD 7; 0 is
	// DefaultLogMaxBytes.
	LogMaxBytes int64 `json:"log_max_bytes,omitempty"`
}

// Status is what the init writes to its status file: the command's pid as
// soon as it runs, how it ended once it has.
type Status struct {
	// PID of the command (in the server's PID namespace view only without
	// isolation; inside the dyno's otherwise). Its process group has the
	// same id.
	PID int `json:"pid,omitempty"`
	// HostPGID is the command's process group as the server sees it,
	// without isolation; 0 with isolation (the init's namespace holds it).
	HostPGID int `json:"host_pgid,omitempty"`
	// Done is set once the command has ended.
	Done bool `json:"done,omitempty"`
	// ExitCode is the exit status; -1 when a signal ended it.
	ExitCode int `json:"exit_code"`
	// Signal names the signal that ended it, if one did.
	Signal string `json:"signal,omitempty"`
	// Error says why the command never ran (a mount or exec failure).
	Error string `json:"error,omitempty"`
}

// ReadStatus reads a status file; a missing or partial file is a zero Status.
func ReadStatus(path string) Status {
	var st Status
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

// IsInit reports whether this process was started as the init.
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == Argv0 }
