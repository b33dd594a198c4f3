package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/weirhq/weir/internal/daemon"
)

// supervisor is the name under which the detached process that owns the
// cluster records its pid, its log and its ready and failed markers.
const supervisor = "weir-local"

func supervisorProcess(stateDir string) daemon.Process {
	return daemon.Process{Dir: stateDir, Name: supervisor}
}

// Serve starts a cluster and keeps it running until ctx is done, starting
// again a component that exits, unless it crash-loops (see Supervise); it
// is the body of the detached `weir local run` process.
// It records its pid and the outcome of the start in the state folder.
func Serve(ctx context.Context, opts Options) error {
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	opts.StateDir = stateDir
	p := supervisorProcess(stateDir)
	p.RecordPID(os.Getpid())
	defer p.RemovePID()
	c, err := Start(ctx, opts)
	if err != nil {
		_ = p.MarkFailed(err)
		return err
	}
	defer c.Stop()
	_ = p.MarkReady(c.Server)
	defer p.ClearMarks()
	return c.Supervise(ctx, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format(time.RFC3339)+" "+format+"\n", args...)
	})
}

// StartDetached runs `exe local run` as a detached process that outlives
// the caller and waits until the cluster is ready or failed to start.
func StartDetached(ctx context.Context, exe string, opts Options) error {
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	p := supervisorProcess(stateDir)
	if pid, ok := p.PID(); ok {
		return fmt.Errorf("a local cluster already runs in %s (pid %d): `weir local stop --state-dir %s` first", stateDir, pid, opts.StateDir)
	}
	args := []string{"local", "run", "--state-dir", stateDir, "--nodes", fmt.Sprint(opts.Nodes)}
	if opts.BinDir != "" {
		args = append(args, "--bin-dir", opts.BinDir)
	}
	if _, err := p.Start(ctx, exe, args); err != nil {
		return fmt.Errorf("the local cluster did not start: %w", err)
	}
	return nil
}

// StopDetached stops the cluster a detached supervisor runs in stateDir and
// waits until none of its processes is left.
func StopDetached(ctx context.Context, stateDir string) error {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("resolving the state folder: %w", err)
	}
	ok, err := supervisorProcess(stateDir).Stop(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	KillLeftovers(stateDir)
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

// ReadStatus inspects the state folder's pid files.
func ReadStatus(stateDir string) (Status, error) {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return Status{}, fmt.Errorf("resolving the state folder: %w", err)
	}
	st := Status{Components: map[string]bool{}, Kubeconfig: KubeconfigPath(stateDir)}
	_, st.Running = supervisorProcess(stateDir).PID()
	for _, name := range binaries {
		_, st.Components[name] = readPID(stateDir, name)
	}
	if server, ok := supervisorProcess(stateDir).ReadyContent(); ok && st.Running {
		st.Server = server
	}
	return st, nil
}

// Components lists the control plane's processes in start order.
func Components() []string { return append([]string(nil), binaries...) }
