package localcluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// nodeReadyTimeout bounds the wait for kwok to mark its nodes Ready. kwok
// does so within a second on a quiet machine; a 2-core machine running
// several race-instrumented test binaries at once has taken over 30 s.
const nodeReadyTimeout = 2 * time.Minute

// registerNodes creates the kwok nodes that are missing and waits until
// every one of them is Ready, so that pods can be scheduled at once. alive
// reports a component that exited, which ends the wait at once.
func registerNodes(ctx context.Context, cfg *rest.Config, n int, alive func() error, kwokLog func() string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client for the local cluster: %w", err)
	}
	for i := range n {
		node := kwokNode(fmt.Sprintf("kwok-node-%d", i))
		_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("registering node %s: %w", node.Name, err)
		}
	}
	deadline := time.Now().Add(nodeReadyTimeout)
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err == nil && readyCount(nodes.Items) >= n {
			return nil
		}
		if err := alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			ready := 0
			if nodes != nil {
				ready = readyCount(nodes.Items)
			}
			return fmt.Errorf("%d of %d kwok nodes were Ready after %s; last lines of logs/kwok.log in the state folder:\n%s",
				ready, n, nodeReadyTimeout, kwokLog())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readyCount(nodes []corev1.Node) int {
	n := 0
	for _, node := range nodes {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// kwokNode is a node that kwok manages: generous capacity so that tests and
// example repositories never run out of room.
func kwokNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
		},
	}
}
