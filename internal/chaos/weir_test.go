package chaos

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// weir killed with SIGKILL in the middle of a dependency chain: once
// started again, the chain converges and nothing it applied was deleted.
func TestKilledInTheMiddleOfAChainConvergesAfterRestart(t *testing.T) {
	o := newWeirOptions(t)
	w := startWeir(t, o)
	c := newChain(t, 6, time.Hour, nil)
	del := watchDeletions(t, c.ns)

	// Kill it while the chain is half done.
	deadline := time.Now().Add(3 * time.Minute)
	for n := c.readyCount(); n < 2; n = c.readyCount() {
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not start converging within 3 minutes: %v", c.pending("1"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.kill()
	t.Logf("killed with %d of %d Kustomizations Ready", c.readyCount(), c.n)

	startWeir(t, o)
	took := c.waitConverged("1", 3*time.Minute)
	t.Logf("after the restart the chain converged in %s", took.Round(100*time.Millisecond))

	// It still follows changes.
	c.commit("2")
	c.request()
	c.waitConverged("2", 3*time.Minute)
	del.check(t)
}

// A restart with an empty artifact folder (the emptyDir of an in-cluster
// install after a reschedule): sources store their artifacts again, every
// consumer waiting for one is queued when it is stored, and the chain is
// Ready again without waiting for any interval.
func TestRestartWithAnEmptyArtifactFolderConverges(t *testing.T) {
	o := newWeirOptions(t)
	w := startWeir(t, o)
	c := newChain(t, 4, time.Hour, nil)
	del := watchDeletions(t, c.ns)
	c.waitConverged("1", 3*time.Minute)

	w.stop()
	entries, err := os.ReadDir(o.storage)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(o.storage, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	startWeir(t, o)
	// Every Kustomization reconciles at start and needs its artifact:
	// converged means each found it again.
	c.waitConverged("1", 2*time.Minute)
	t.Logf("with an empty artifact folder the chain was Ready again %s after the start", time.Since(start).Round(100*time.Millisecond))
	c.commit("2")
	c.request()
	c.waitConverged("2", 2*time.Minute)
	del.check(t)
}

// Two weir processes on one cluster elect one leader; when the leader is
// killed the other takes over, and nothing is deleted on the way.
func TestTwoProcessesOneLeaderFailover(t *testing.T) {
	a := newWeirOptions(t)
	a.leaderElect, a.name = true, "weir-a"
	b := newWeirOptions(t)
	b.leaderElect, b.name = true, "weir-b"
	wa := startWeir(t, a)
	wb := startWeir(t, b)
	c := newChain(t, 3, time.Hour, nil)
	del := watchDeletions(t, c.ns)
	c.waitConverged("1", 3*time.Minute)

	// Whichever led, killing one leaves one to reconcile.
	wa.kill()
	c.commit("2")
	c.request()
	took := c.waitConverged("2", 3*time.Minute)
	t.Logf("with weir-a killed, the change converged in %s", took.Round(100*time.Millisecond))

	startWeir(t, a)
	wb.kill()
	c.commit("3")
	c.request()
	took = c.waitConverged("3", 3*time.Minute)
	t.Logf("with weir-b killed, the change converged in %s", took.Round(100*time.Millisecond))
	del.check(t)
}
