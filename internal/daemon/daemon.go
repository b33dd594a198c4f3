// Package daemon runs a weir command as a background process that outlives
// the command that started it, and stops it again. A background process is
// known by its state folder and name: it records its pid in
// run/<name>.pid, tells the starter how its start went through the marker
// files run/<name>.ready (with a line of content, such as an address) or
// run/<name>.failed (with the error), and writes its output to
// logs/<name>.log. `weir local start` and `weir up --detach` use it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a background process of a state folder.
type Process struct {
	// Dir is the state folder.
	Dir string
	// Name names the process's files.
	Name string
}

func (p Process) pidFile() string    { return filepath.Join(p.Dir, "run", p.Name+".pid") }
func (p Process) readyFile() string  { return filepath.Join(p.Dir, "run", p.Name+".ready") }
func (p Process) failedFile() string { return filepath.Join(p.Dir, "run", p.Name+".failed") }

// LogFile is the path of the process's log.
func (p Process) LogFile() string { return filepath.Join(p.Dir, "logs", p.Name+".log") }

// RecordPID records pid as the process's.
func (p Process) RecordPID(pid int) {
	_ = os.MkdirAll(filepath.Dir(p.pidFile()), 0o755)
	_ = writeAtomic(p.pidFile(), strconv.Itoa(pid))
}

// RemovePID forgets the process's pid.
func (p Process) RemovePID() { _ = os.Remove(p.pidFile()) }

// PID returns the recorded pid and whether that process is alive.
func (p Process) PID() (int, bool) {
	b, err := os.ReadFile(p.pidFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, Alive(pid)
}

// MarkReady tells the starter that the start succeeded; content (an
// address, a path) is what Start returns.
func (p Process) MarkReady(content string) error {
	_ = os.MkdirAll(filepath.Dir(p.readyFile()), 0o755)
	return writeAtomic(p.readyFile(), content)
}

// MarkFailed tells the starter that the start failed with err.
func (p Process) MarkFailed(err error) error {
	_ = os.MkdirAll(filepath.Dir(p.failedFile()), 0o755)
	return writeAtomic(p.failedFile(), err.Error())
}

// ClearMarks removes the ready and failed markers.
func (p Process) ClearMarks() {
	_ = os.Remove(p.readyFile())
	_ = os.Remove(p.failedFile())
}

// ReadyContent is what the running process wrote with MarkReady, and
// whether it did.
func (p Process) ReadyContent() (string, bool) {
	b, err := os.ReadFile(p.readyFile())
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Start runs exe with args as a detached process (its own session, its
// output appended to LogFile) and waits until it marks itself ready,
// returning what it wrote, or failed, or exits, or ctx ends (which stops
// it). The process must record its pid and call MarkReady or MarkFailed.
func (p Process) Start(ctx context.Context, exe string, args []string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(p.LogFile()), 0o755); err != nil {
		return "", fmt.Errorf("creating the state folder: %w", err)
	}
	p.ClearMarks()
	logFile, err := os.OpenFile(p.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening the log of %s: %w", p.Name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s in the background: %w", p.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if content, ok := p.ReadyContent(); ok {
			return content, nil
		}
		if b, err := os.ReadFile(p.failedFile()); err == nil {
			return "", errors.New(string(b))
		}
		select {
		case err := <-exited:
			if b, rerr := os.ReadFile(p.failedFile()); rerr == nil {
				return "", errors.New(string(b))
			}
			return "", fmt.Errorf("%s exited while starting (%v); see %s", p.Name, err, p.LogFile())
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends the recorded process SIGTERM, waits up to grace for it to
// exit, then kills it; it reports whether a process was running.
func (p Process) Stop(ctx context.Context, grace time.Duration) (bool, error) {
	pid, ok := p.PID()
	if ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for Alive(pid) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return true, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	p.RemovePID()
	return ok, nil
}

// Alive reports whether the process pid runs (a zombie does not).
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if rerr == nil {
		// The state follows the command name, which is in parentheses
		// and may hold spaces.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			if f := strings.Fields(string(b)[i+1:]); len(f) > 0 && f[0] == "Z" {
				return false
			}
		}
	}
	return true
}

// writeAtomic writes a file whole or not at all: readers poll for it and
// must never see it empty.
func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
