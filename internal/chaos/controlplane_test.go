package chaos

import (
	"context"
	"testing"
	"time"
)

// outage stops one component of the control plane for d while a change
// is pushed to Git, starts it again, and checks that the chain converges
// on the change once the component is back, logging how long it took.
func outage(t *testing.T, component string, d time.Duration) {
	startWeir(t, newWeirOptions(t))
	// The GitRepository polls, so the change is found without a request
	// (which the API server could not take during the outage anyway).
	c := newChain(t, 3, 5*time.Second, nil)
	del := watchDeletions(t, c.ns)
	c.waitConverged("1", 3*time.Minute)
	del.stop() // its watch would end with the API server

	if err := env.Cluster.StopComponent(component, true); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = env.Cluster.StartComponent(context.Background(), component)
		}
	}()
	c.commit("2")
	time.Sleep(d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.Cluster.StartComponent(ctx, component); err != nil {
		t.Fatalf("starting %s again: %v", component, err)
	}
	restarted = true
	back := time.Now()
	del = watchDeletions(t, c.ns)
	// The target is 30 s after the API answers again; the bound
	// leaves room for a loaded machine and the time is logged.
	c.waitConverged("2", 3*time.Minute)
	t.Logf("%s down for %s: the change converged %s after it was back", component, d, time.Since(back).Round(100*time.Millisecond))
	del.check(t)
	for _, k := range c.statuses() {
		if k.Status.LastAppliedRevision == "" {
			t.Errorf("Kustomization %s lost its applied revision", k.Name)
		}
	}
}

// The API server restarted alone: weir lives through it and converges on
// what changed meanwhile, without back-off grown during the outage holding
// it.
//
// The outage stays under the node controller's grace period (40 s): a
// longer one marks the simulated nodes NotReady, and once they are, kwok
// was seen not to make their pods Ready again (a run with 45 s left a
// Deployment InProgress for minutes), which tests kwok, not weir.
func TestAPIServerRestartConverges(t *testing.T) {
	outage(t, "kube-apiserver", 25*time.Second)
}

// etcd restarted alone: the API server answers errors meanwhile; weir
// converges once etcd is back.
func TestEtcdRestartConverges(t *testing.T) {
	outage(t, "etcd", 20*time.Second)
}
