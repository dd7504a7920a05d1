package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// proc is one started dyno process: the init (see package dynoinit) that
// holds the command, with the command's status and the host resources the
// dyno uses.
type proc struct {
	id      string // names the dyno's folder and cgroup
	pid     int    // the init's pid, also its session and process group id
	port    int    // $PORT; 0 for the release phase
	addr    string // where the app listens, as the router dials it
	started time.Time
	exited  chan struct{}   // closed once the command has ended and its status is read
	status  dynoinit.Status // read before exited is closed
	oom     bool            // the kernel killed it for its memory limit
	outDone chan struct{}   // closed once its live output is copied (nil when adopted)
	box     *box            // isolation resources; nil without isolation
	reaped  sync.Once
}

// exitDescription says how the command ended; call it after exited.
func (p *proc) exitDescription() string {
	st := p.status
	switch {
	case p.oom:
		return "ran out of memory and was killed (its limit is " + humanMiB(p.box.limitBytes) + ")"
	case st.Error != "":
		return "could not start: " + st.Error
	case st.Signal != "":
		return "was killed by signal " + signalText(st.Signal)
	case !st.Done:
		return "was killed by signal killed"
	}
	return "exited with status " + strconv.Itoa(st.ExitCode)
}

// failure is how p ended as a release's failure of phase, about the
// dyno named name, with its last output lines.
func (p *proc) failure(phase, name string, output []string) *slipway.Failure {
	f := &slipway.Failure{Phase: phase, Dyno: name, Output: output}
	switch st := p.status; {
	case p.oom:
		f.Signal = "OOMKilled"
	case st.Error != "":
		f.Phase = slipway.FailStart
	case st.Signal != "":
		f.Signal = st.Signal
	case !st.Done:
		f.Signal = "SIGKILL"
	default:
		f.ExitCode = slipway.ExitStatus(st.ExitCode)
	}
	return f
}

// exitCode is the command's exit status, -1 when a signal ended it.
func (p *proc) exitCode() int {
	if p.oom || p.status.Signal != "" || !p.status.Done {
		return -1
	}
	return p.status.ExitCode
}

// signalText turns "SIGKILL" into "killed", as Go's signal names read.
func signalText(name string) string {
	if s := unix.SignalNum(name); s != 0 {
		return s.String()
	}
	return name
}

func humanMiB(b int64) string { return strconv.FormatInt(b>>20, 10) + " MiB" }

// spawn starts `/bin/sh -c <command>` under a dyno init: isolated when the
// runtime isolates (own namespaces, root, uid, cgroup and network), else in
// dir as the server's user. Output goes, after header (a line of the
// slipway source), to DataDir/logs/<appID>/<logName>.log, rotated into
// <logName>.log.1 past LogMaxBytes, and each line to onLine. The process
// is recorded in dynos.json so that a restarted server adopts it.
func (r *Runtime) spawn(ps spawnSpec) (*proc, error) {
	logDir := filepath.Join(r.cfg.DataDir, "logs", ps.appID)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	// The init reads the log back when it rotates it into log.1.
	logPath := filepath.Join(logDir, ps.logName+".log")
	logf, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	prevf, err := os.OpenFile(logPath+".1", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer prevf.Close()
	if _, err := logf.WriteString(dynoinit.FormatLogLine(r.now(), dynoinit.SourceSlipway, ps.header)); err != nil {
		return nil, err
	}
	p := &proc{id: uuid.NewString(), port: ps.port, exited: make(chan struct{}), outDone: make(chan struct{})}
	dir := r.procDir(p.id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	statusf, err := os.OpenFile(filepath.Join(dir, "status"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer statusf.Close()
	spec := dynoinit.Spec{Command: ps.command, Env: ps.env, Dir: ps.dir, LogMaxBytes: r.cfg.LogMaxBytes}
	var flags uintptr
	if r.iso != nil {
		b, err := r.iso.prepare(ps.appID, p.id, dir, ps.dir, ps.size, &spec)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		p.box = b
		flags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	}
	fail := func(err error) (*proc, error) {
		if p.box != nil {
			r.iso.release(p.box)
		}
		os.RemoveAll(dir)
		return nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	liveR, liveW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return fail(err)
	}
	cmd := &exec.Cmd{
		Path:        r.initPath,
		Args:        []string{dynoinit.Argv0},
		Env:         []string{},
		ExtraFiles:  []*os.File{ctlR, logf, statusf, liveW, prevf},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Cloneflags: flags},
	}
	started := time.Now()
	err = cmd.Start()
	ctlR.Close()
	liveW.Close()
	if err != nil {
		ctlW.Close()
		liveR.Close()
		return fail(fmt.Errorf("starting the dyno's init: %w", err))
	}
	p.pid, p.started = cmd.Process.Pid, started
	abort := func(err error) (*proc, error) {
		ctlW.Close() // the init exits without starting the command
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		liveR.Close()
		return fail(err)
	}
	// The spec may be larger than a pipe's buffer: the init reads it while
	// the host side of the dyno is set up.
	wrote := make(chan error, 1)
	go func() { wrote <- json.NewEncoder(ctlW).Encode(spec) }()
	if p.box != nil {
		if err := r.iso.attach(p.box, p.pid); err != nil {
			return abort(err)
		}
	}
	if err := <-wrote; err != nil {
		return abort(fmt.Errorf("handing the dyno its spec: %w", err))
	}
	if _, err := ctlW.Write([]byte{dynoinit.GoByte}); err != nil {
		return abort(fmt.Errorf("starting the dyno: %w", err))
	}
	ctlW.Close()
	p.addr = r.dialAddr(p)
	rec := procRecord{
		ID: p.id, App: ps.appID, AppKey: ps.appKey, Dyno: ps.logName, DynoID: ps.dynoID, PID: p.pid, PGID: p.pid,
		StartTicks: procStartTicks(p.pid), Started: started.UTC(), Port: p.port, Addr: p.addr,
		Release: ps.release, SpecKey: ps.specKey, Command: ps.command, Healthcheck: ps.healthcheck, Size: ps.size,
	}
	if p.box != nil {
		rec.NetHost = p.box.lease.Host.String()
	}
	r.state.add(rec, r.log)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		copyOutput(discard{}, liveR, ps.onLine)
		liveR.Close()
		close(p.outDone)
	}()
	go func() {
		defer r.wg.Done()
		cmd.Wait()
		r.finish(p)
	}()
	return p, nil
}

// spawnSpec is what spawn starts.
type spawnSpec struct {
	appID, appKey, logName string
	dynoID                 string // "" for the release phase
	command, dir           string
	env                    []string
	header                 string
	port                   int
	release                relRef
	specKey, healthcheck   string
	onLine                 func(string)
	size                   string // the formation's size; "" for the release phase
}

// relRef is a release as dynos.json records it.
type relRef struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// finish reads how p's command ended and closes p.exited.
func (r *Runtime) finish(p *proc) {
	p.status = dynoinit.ReadStatus(filepath.Join(r.procDir(p.id), "status"))
	if p.box != nil && p.box.group != nil {
		if n, err := p.box.group.OOMKills(); err == nil && n > 0 {
			p.oom = true
		}
	}
	close(p.exited)
}

// procDir is the folder of one dyno process: its status file and, with
// isolation, its overlay layers and root mount point.
func (r *Runtime) procDir(id string) string { return filepath.Join(r.cfg.DataDir, "dynos", id) }

// dialAddr is where p's app listens, as the router and health checks see it.
func (r *Runtime) dialAddr(p *proc) string {
	if p.box != nil {
		return p.box.lease.Dyno.String() + ":" + strconv.Itoa(p.port)
	}
	return "127.0.0.1:" + strconv.Itoa(p.port)
}

// terminate stops p: SIGTERM to the init (which passes it to the command's
// group), SIGKILL to everything after StopGrace; it returns how the command
// ended. It is a no-op (bar reaping) for a process that already exited.
func (r *Runtime) terminate(p *proc) string {
	select {
	case <-p.exited:
		r.reap(p)
		return p.exitDescription()
	default:
	}
	syscall.Kill(p.pid, syscall.SIGTERM)
	t := time.NewTimer(r.cfg.StopGrace)
	defer t.Stop()
	note := ""
	select {
	case <-p.exited:
		note = p.exitDescription()
	case <-t.C:
		r.kill(p)
		<-p.exited
		note = "killed with SIGKILL after the " + fmtDur(r.cfg.StopGrace) + " stop grace period"
	}
	r.reap(p)
	return note
}

// kill sends SIGKILL to p's init and the command's group. With isolation
// the init is PID 1 of the dyno, so the kernel ends everything in it.
func (r *Runtime) kill(p *proc) {
	if pg := dynoinit.ReadStatus(filepath.Join(r.procDir(p.id), "status")).HostPGID; pg > 1 {
		syscall.Kill(-pg, syscall.SIGKILL)
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
}

// reap finishes an exited process: SIGKILL to whatever is left of it, a
// bounded wait for its last output, its port, network and cgroup back, its
// folder removed and its entry out of dynos.json.
func (r *Runtime) reap(p *proc) {
	p.reaped.Do(func() {
		r.kill(p)
		if p.outDone != nil {
			t := time.NewTimer(2 * time.Second)
			select {
			case <-p.outDone:
			case <-t.C:
			}
			t.Stop()
		}
		if p.box == nil && p.port != 0 {
			r.ports.free(p.port)
		}
		if p.box != nil {
			r.iso.release(p.box)
		}
		os.RemoveAll(r.procDir(p.id))
		r.state.remove(p.pid, r.log)
	})
}

// watchAdopted closes p.exited when the adopted init p.pid ends. The server
// is not its parent, so it waits on a pidfd instead of wait(2).
func (r *Runtime) watchAdopted(p *proc) error {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		return fmt.Errorf("watching pid %d: %w", p.pid, err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}
		r.finish(p)
	}()
	return nil
}
