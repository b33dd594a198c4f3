package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deploymentFloor applies one Deployment and waits until it is Available:
// the least one level of a dependency chain can cost on this control plane.
func deploymentFloor(ctx context.Context, c client.Client) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-floor"}}
	if err := c.Create(ctx, ns); err != nil {
		return 0, fmt.Errorf("creating the floor namespace: %w", err)
	}
	start := time.Now()
	if err := c.Create(ctx, floorDeployment(ns.Name, "floor")); err != nil {
		return 0, fmt.Errorf("creating the floor Deployment: %w", err)
	}
	if err := waitAvailable(ctx, c, ns.Name, []string{"floor"}, time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// throughputFloor applies n apps' objects (a ConfigMap, a Service and a
// Deployment each) with the engines' number of workers and waits until
// every Deployment is Available: the least n independent apps can cost.
func throughputFloor(ctx context.Context, c client.Client, n int) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-floor"}}
	if err := c.Create(ctx, ns); err != nil {
		return 0, fmt.Errorf("creating the floor namespace: %w", err)
	}
	start := time.Now()
	names := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				objs := []client.Object{
					&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}, Data: map[string]string{"k": "v"}},
					&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
						Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}}}},
					floorDeployment(ns.Name, name),
				}
				for _, o := range objs {
					if err := c.Create(ctx, o); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	all := make([]string, n)
	for i := range n {
		all[i] = "floor-" + strconv.Itoa(i)
		names <- all[i]
	}
	close(names)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("applying the floor apps: %w", err)
	}
	if err := waitAvailable(ctx, c, ns.Name, all, 10*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func floorDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
			},
		},
	}
}

// waitAvailable waits until every named Deployment has its replica.
func waitAvailable(ctx context.Context, c client.Client, ns string, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for {
		var list appsv1.DeploymentList
		listed := time.Now()
		if err := c.List(ctx, &list, client.InNamespace(ns)); err == nil {
			available := 0
			for _, d := range list.Items {
				if want[d.Name] && d.Status.AvailableReplicas >= 1 {
					available++
				}
			}
			if available == len(want) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d floor Deployments Available after %s", available, len(want), timeout)
			}
		}
		time.Sleep(pollAfter(time.Since(listed)))
	}
}

// pollAfter is how long a wait sleeps after a list that took d: four
// times d, from 10 ms to 1 s, so that the harness's own lists of 1000s of
// objects take at most a fifth of the API server's time and of a core,
// which the engine and the floor need, for a clock as fine as the list.
func pollAfter(d time.Duration) time.Duration {
	return min(max(4*d, 10*time.Millisecond), time.Second)
}
