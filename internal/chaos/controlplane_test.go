package chaos

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	podsReadyAgain(t, c.ns, 2*time.Minute)
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
// The outage outlasts the node controller's grace period (40 s): when the
// API server is back, the nodes have missed their heartbeats, their pods
// are marked NotReady and the Deployments lose Available until the nodes
// report again, as on a real cluster after a long outage; weir's health
// checks must wait that out, not fail or hang on it.
func TestAPIServerRestartConverges(t *testing.T) {
	outage(t, "kube-apiserver", 60*time.Second)
}

// etcd restarted alone: the API server answers errors meanwhile; weir
// converges once etcd is back.
func TestEtcdRestartConverges(t *testing.T) {
	outage(t, "etcd", 20*time.Second)
}

// podsReadyAgain waits until every pod of ns is Ready, as the simulated
// kubelets report them once their nodes are back from an outage (the node
// controller marks them NotReady when the nodes missed their heartbeats),
// and logs whether any was seen NotReady meanwhile.
func podsReadyAgain(t *testing.T, ns string, timeout time.Duration) {
	t.Helper()
	sawNotReady := false
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var notReady []string
		for _, p := range pods.Items {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			}
			if !ready {
				notReady = append(notReady, p.Name)
			}
		}
		sawNotReady = sawNotReady || len(notReady) > 0
		if len(pods.Items) > 0 && len(notReady) == 0 {
			t.Logf("every pod Ready (seen NotReady after the outage: %v)", sawNotReady)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods still not Ready %s after the outage: %v", timeout, notReady)
		}
	}
}
