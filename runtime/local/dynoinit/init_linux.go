//go:build linux

package dynoinit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Main runs the init and exits with the command's exit status (128+n when
// signal n ended it). Call it first thing in main (and in TestMain of
// packages whose tests start dynos) when IsInit is true.
func Main() {
	// The inherited files are the init's, not the command's: without
	// close-on-exec the command could write its own status or logs.
	for fd := FDControl; fd <= FDLogPrev; fd++ {
		syscall.CloseOnExec(fd)
	}
	logf := os.NewFile(FDLog, "log")
	statf := os.NewFile(FDStatus, "status")
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		logf.WriteString(FormatLogLine(time.Now(), SourceSlipway, "slipway init: "+msg))
		writeStatus(statf, Status{Done: true, ExitCode: 127, Error: msg})
		os.Exit(127)
	}
	spec, err := readSpec(os.NewFile(FDControl, "control"))
	if err != nil {
		fail("%v", err)
	}
	var live *os.File
	if _, err := unix.FcntlInt(FDLive, unix.F_GETFD, 0); err == nil { // FDLive is optional
		live = os.NewFile(FDLive, "live")
	}
	lw := &LogWriter{Log: logf, Max: spec.LogMaxBytes}
	if _, err := unix.FcntlInt(FDLogPrev, unix.F_GETFD, 0); err == nil { // so is FDLogPrev
		lw.Prev = os.NewFile(FDLogPrev, "log.1")
	}
	// Signals are caught before the command starts, so a SIGTERM sent at
	// once is forwarded rather than lost.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD, syscall.SIGHUP)

	dir := spec.Dir
	if spec.Isolate {
		if err := buildRoot(spec); err != nil {
			fail("building the dyno's filesystem: %v", err)
		}
		dir = "/app"
		if spec.Hostname != "" {
			unix.Sethostname([]byte(spec.Hostname))
		}
		if spec.Nproc > 0 {
			// Inherited by the command and enforced for its unprivileged
			// uid: a dyno must not start without it.
			lim := unix.Rlimit{Cur: spec.Nproc, Max: spec.Nproc}
			if err := unix.Setrlimit(unix.RLIMIT_NPROC, &lim); err != nil {
				fail("limiting the app's processes (RLIMIT_NPROC %d): %v", spec.Nproc, err)
			}
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		fail("%v", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fail("%v", err)
	}
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.Isolate {
		sys.Credential = &syscall.Credential{Uid: uint32(spec.UID), Gid: uint32(spec.GID), Groups: []uint32{}}
	}
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", spec.Command}, &syscall.ProcAttr{
		Dir: dir, Env: spec.Env, Files: []uintptr{devnull.Fd(), pw.Fd(), pw.Fd()}, Sys: sys,
	})
	pw.Close()
	devnull.Close()
	if err != nil {
		fail("starting the command: %v", err)
	}
	st := Status{PID: pid}
	if !spec.Isolate {
		st.HostPGID = pid
	}
	writeStatus(statf, st)

	outDone := make(chan struct{})
	go func() {
		copyOutput(lw, live, pr)
		close(outDone)
	}()

	for st.Done == false {
		switch s := <-sigs; s {
		case syscall.SIGCHLD:
			st = reap(pid, st)
		default:
			syscall.Kill(-pid, s.(syscall.Signal))
		}
	}
	// The command is gone: whatever it left behind goes with it. In a PID
	// namespace kill(-1) reaches every process but this one; without one,
	// its process group is all that is ours.
	if spec.Isolate {
		syscall.Kill(-1, syscall.SIGKILL)
	} else {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
	}
	writeStatus(statf, st)
	if st.Signal != "" {
		os.Exit(128 + int(signalNumber(st.Signal)))
	}
	os.Exit(st.ExitCode)
}

// readSpec decodes the Spec and waits for the go byte.
func readSpec(ctl *os.File) (Spec, error) {
	var spec Spec
	br := bufio.NewReader(ctl)
	dec := json.NewDecoder(br)
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("reading the dyno's spec: %v", err)
	}
	rest := io.MultiReader(dec.Buffered(), br)
	for {
		var b [1]byte
		if _, err := rest.Read(b[:]); err != nil {
			return spec, errors.New("the server went away before the dyno could start")
		}
		if b[0] == GoByte {
			ctl.Close()
			return spec, nil
		}
		if b[0] != ' ' && b[0] != '\n' {
			return spec, errors.New("the server cancelled the dyno's start")
		}
	}
}

// reap collects every exited child; the command's end is recorded in st.
func reap(pid int, st Status) Status {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if got <= 0 || err != nil {
			return st
		}
		if got == pid {
			st.Done = true
			if ws.Signaled() {
				st.ExitCode, st.Signal = -1, unix.SignalName(ws.Signal())
			} else {
				st.ExitCode = ws.ExitStatus()
			}
		}
	}
}

func signalNumber(name string) syscall.Signal {
	if s := unix.SignalNum(name); s != 0 {
		return s
	}
	return syscall.SIGKILL
}

// writeStatus replaces the status file's content.
func writeStatus(f *os.File, st Status) {
	b, _ := json.Marshal(st)
	f.Truncate(0)
	f.WriteAt(append(b, '\n'), 0)
}

// copyOutput copies the command's output to the log, and to live while
// anyone reads it (a server that went away leaves a broken pipe: the log
// goes on without it).
func copyOutput(log *LogWriter, live *os.File, r io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			log.Write(buf[:n])
			if live != nil {
				if _, werr := live.Write(buf[:n]); werr != nil {
					live.Close()
					live = nil
				}
			}
		}
		if err != nil {
			log.Flush()
			if live != nil {
				live.Close()
			}
			return
		}
	}
}

// buildRoot makes spec.Root the dyno's root: a tmpfs holding read-only
// binds of the host's system folders, a fresh /proc, a private /tmp and
// /dev, and the slug at /app through an overlay whose upper layer belongs
// to the dyno's uid; then it pivots into it. The data dir, the database,
// other slugs and the server's processes are not in it.
func buildRoot(spec Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := spec.Root
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting the root: %w", err)
	}
	for _, p := range []string{"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"} {
		if err := mirror("/"+p, filepath.Join(root, p)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
		return err
	}
	opts := "lowerdir=" + spec.Lower + ",upperdir=" + spec.Upper + ",workdir=" + spec.Work
	if err := unix.Mount("overlay", filepath.Join(root, "app"), "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting the slug: %w", err)
	}
	tmpSize := spec.TmpBytes
	if tmpSize <= 0 {
		tmpSize = 64 << 20
	}
	if err := mountAt(root, "tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+strconv.FormatInt(tmpSize, 10)); err != nil {
		return err
	}
	if err := mountAt(root, "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := buildDev(filepath.Join(root, "dev")); err != nil {
		return err
	}
	old := filepath.Join(root, ".old")
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	os.Remove("/.old")
	// The root itself is read-only from here; /app, /tmp and /dev/shm stay
	// writable.
	return unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
}

// mirror reproduces host path src at dst: a symlink as the same symlink
// (merged /usr systems link /bin to usr/bin), a folder as a read-only bind
// mount; a missing path is skipped.
func mirror(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", src, err)
	}
	return nil
}

func mountAt(root, name, fstype string, flags uintptr, data string) error {
	dst := filepath.Join(root, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(fstype, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mounting /%s: %w", name, err)
	}
	return nil
}

// buildDev makes a minimal /dev: the harmless character devices bound from
// the host, the usual links into /proc, and a small /dev/shm.
func buildDev(dev string) error {
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		dst := filepath.Join(dev, n)
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount("/dev/"+n, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", n, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return mountAt(dev, "shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=16m")
}
