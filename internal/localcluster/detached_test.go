package localcluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/localcluster"
)

// asWeir makes the test binary act as the weir command when it is started
// by the tests below, so that detached start and stop run the real CLI.
const asWeir = "WEIR_TEST_AS_WEIR"

func TestMain(m *testing.M) {
	if os.Getenv(asWeir) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestDetachedStartAndStopLeaveNoProcessBehind(t *testing.T) {
	t.Setenv(asWeir, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	start := time.Now()
	if err := localcluster.StartDetached(ctx, exe, localcluster.Options{StateDir: dir, Nodes: 1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("detached start ready in %s", time.Since(start))
	st, err := localcluster.ReadStatus(dir)
	if err != nil || !st.Running || st.Server == "" {
		t.Fatalf("status after start: %+v %v", st, err)
	}
	for name, up := range st.Components {
		if !up {
			t.Errorf("%s is not running after start", name)
		}
	}
	pids := componentPIDs(t, dir)
	if err := localcluster.StopDetached(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still runs after stop", name, pid)
		}
	}
	if st, _ := localcluster.ReadStatus(dir); st.Running {
		t.Error("status still says running after stop")
	}
}

func TestComponentsDieWithTheirParent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// `weir local run` in the foreground, then killed without a chance to
	// clean up.
	cmd := exec.Command(exe, "local", "run", "--state-dir", dir)
	cmd.Env = append(os.Environ(), asWeir+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "run", "weir-local.ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pids := componentPIDs(t, dir)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for name, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			t.Errorf("%s (pid %d) outlived its killed parent", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
