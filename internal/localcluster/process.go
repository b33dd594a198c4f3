package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weirhq/weir/internal/daemon"
	"github.com/weirhq/weir/internal/loopback"
)

// process is one running component of the control plane.
type process struct {
	name string
	bin  string
	args []string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // exit status, set before done is closed
}

// startProcess runs bin with args, its output appended to logs/<name>.log in
// the state folder. The child is killed by the kernel if this process dies
// (Pdeathsig), so a crashed parent leaves nothing behind.
func startProcess(stateDir, name, bin string, args []string) (*process, error) {
	logDir := filepath.Join(stateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the log folder: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = stateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, bin: bin, args: args, cmd: cmd, log: logFile, done: make(chan struct{})}
	writePID(stateDir, name, cmd.Process.Pid)
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to end with SIGTERM and kills it after grace.
func (p *process) stop(stateDir string, grace time.Duration) {
	defer removePID(stateDir, p.name)
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last lines of the process log, for error messages.
func tail(stateDir, name string, lines int) string {
	b, err := os.ReadFile(filepath.Join(stateDir, "logs", name+".log"))
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func component(stateDir, name string) daemon.Process {
	return daemon.Process{Dir: stateDir, Name: name}
}

func writePID(stateDir, name string, pid int) { component(stateDir, name).RecordPID(pid) }

func removePID(stateDir, name string) { component(stateDir, name).RemovePID() }

// readPID returns the pid recorded for name and whether that process is
// still alive.
func readPID(stateDir, name string) (int, bool) { return component(stateDir, name).PID() }

// KillLeftovers ends the control plane processes recorded in a state
// folder that are still running — left behind by a crash, or by a process
// that was killed — so that they do not hold etcd's data or the ports —
// and returns how many it ended.
func KillLeftovers(stateDir string) int {
	killed := 0
	for _, name := range binaries {
		pid, ok := readPID(stateDir, name)
		if ok && commandMatches(pid, name) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		removePID(stateDir, name)
	}
	return killed
}

// commandMatches guards against killing an unrelated process that reused a
// recorded pid.
func commandMatches(pid int, name string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	arg0, _, _ := strings.Cut(string(b), "\x00")
	return filepath.Base(arg0) == name
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, below the
// ephemeral range: etcd keeps its port when the chaos tests restart it.
func freePorts(n int) ([]int, error) {
	return loopback.FreePorts(n)
}
