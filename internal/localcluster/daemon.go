package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// supervisor is the name under which the detached process that owns the
// cluster records its pid.
const supervisor = "weir-local"

// readyFile and failedFile are how a detached supervisor tells the command
// that started it whether the cluster came up.
func readyFile(stateDir string) string  { return filepath.Join(stateDir, "run", "ready") }
func failedFile(stateDir string) string { return filepath.Join(stateDir, "run", "failed") }

// Serve starts a cluster and keeps it running until ctx is done or a
// component dies; it is the body of the detached `weir local run` process.
// It records its pid and the outcome of the start in the state folder.
func Serve(ctx context.Context, opts Options) error {
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	opts.StateDir = stateDir
	writePID(stateDir, supervisor, os.Getpid())
	defer removePID(stateDir, supervisor)
	_ = os.Remove(readyFile(stateDir))
	_ = os.Remove(failedFile(stateDir))

	c, err := Start(ctx, opts)
	if err != nil {
		_ = writeAtomic(failedFile(stateDir), err.Error())
		return err
	}
	defer c.Stop()
	_ = writeAtomic(readyFile(stateDir), c.Server)
	defer os.Remove(readyFile(stateDir))
	select {
	case <-ctx.Done():
		return nil
	case name := <-c.Done():
		return fmt.Errorf("%s exited; last lines of its log:\n%s", name, tail(stateDir, name, 15))
	}
}

// StartDetached runs `exe local run` as a detached process that outlives
// the caller and waits until the cluster is ready or failed to start.
func StartDetached(ctx context.Context, exe string, opts Options) error {
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	if pid, ok := readPID(stateDir, supervisor); ok {
		return fmt.Errorf("a local cluster already runs in %s (pid %d): `weir local stop --state-dir %s` first", stateDir, pid, opts.StateDir)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating the state folder: %w", err)
	}
	_ = os.Remove(readyFile(stateDir))
	_ = os.Remove(failedFile(stateDir))
	logFile, err := os.OpenFile(filepath.Join(stateDir, "logs", supervisor+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the supervisor log: %w", err)
	}
	defer logFile.Close()
	args := []string{"local", "run", "--state-dir", stateDir, "--nodes", fmt.Sprint(opts.Nodes)}
	if opts.BinDir != "" {
		args = append(args, "--bin-dir", opts.BinDir)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the local cluster supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if _, err := os.Stat(readyFile(stateDir)); err == nil {
			return nil
		}
		if b, err := os.ReadFile(failedFile(stateDir)); err == nil {
			return fmt.Errorf("the local cluster did not start: %s", b)
		}
		select {
		case err := <-exited:
			if b, rerr := os.ReadFile(failedFile(stateDir)); rerr == nil {
				return fmt.Errorf("the local cluster did not start: %s", b)
			}
			return fmt.Errorf("the local cluster supervisor exited (%v); see %s", err, logFile.Name())
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StopDetached stops the cluster a detached supervisor runs in stateDir and
// waits until none of its processes is left.
func StopDetached(ctx context.Context, stateDir string) error {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	pid, ok := readPID(stateDir, supervisor)
	if ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	removePID(stateDir, supervisor)
	killLeftovers(stateDir)
	if !ok {
		return ErrNotRunning
	}
	return nil
}

// ErrNotRunning says that no local cluster runs in a state folder.
var ErrNotRunning = errors.New("no local cluster is running in this state folder")

// Status describes the cluster of a state folder.
type Status struct {
	// Running is true when the supervisor is alive.
	Running bool
	// Server is the API server URL while running.
	Server string
	// Components maps each component to whether its process is alive.
	Components map[string]bool
	// Kubeconfig is the admin kubeconfig path.
	Kubeconfig string
}

// writeAtomic writes a marker file whole or not at all: readers poll for
// it and must never see it empty.
func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadStatus inspects the state folder's pid files.
func ReadStatus(stateDir string) (Status, error) {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return Status{}, fmt.Errorf("resolving the state folder: %w", err)
	}
	st := Status{Components: map[string]bool{}, Kubeconfig: KubeconfigPath(stateDir)}
	_, st.Running = readPID(stateDir, supervisor)
	for _, name := range binaries {
		_, st.Components[name] = readPID(stateDir, name)
	}
	if b, err := os.ReadFile(readyFile(stateDir)); err == nil && st.Running {
		st.Server = strings.TrimSpace(string(b))
	}
	return st, nil
}

// Components lists the control plane's processes in start order.
func Components() []string { return append([]string(nil), binaries...) }
