package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kube"
)

// LeaderLabel is set to "true" on the pod of the replica that leads: see
// kube.LeaderLabel.
const LeaderLabel = kube.LeaderLabel

// podLabel patches LeaderLabel on the pod of this replica.
type podLabel struct {
	c         client.Client
	namespace string
	pod       string
	log       logr.Logger
}

// newPodLabel returns nil when weir does not run in a pod ($POD_NAME is
// not set, as outside a cluster).
func newPodLabel(c client.Client, log logr.Logger) *podLabel {
	pod := os.Getenv("POD_NAME")
	if pod == "" {
		return nil
	}
	return &podLabel{c: c, namespace: runtimeNamespace(), pod: pod, log: log}
}

// set sets (leader) or removes the label.
func (p *podLabel) set(ctx context.Context, leader bool) error {
	var value any // null removes it
	if leader {
		value = "true"
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{LeaderLabel: value}}})
	if err != nil {
		return err
	}
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = p.namespace, p.pod
	if err := p.c.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("labelling pod %s/%s as leader=%v: %w", p.namespace, p.pod, leader, err)
	}
	return nil
}

// NeedLeaderElection makes Start run on the leader only.
func (p *podLabel) NeedLeaderElection() bool { return true }

// Start labels the pod once this replica leads, and takes the label off
// when it stops leading.
func (p *podLabel) Start(ctx context.Context) error {
	if err := p.set(ctx, true); err != nil {
		// Without the label the Service sends artifact requests nowhere:
		// say so, and keep reconciling (consumers in this process read
		// the store directly).
		p.log.Error(err, "the artifact Service will not reach this replica")
	}
	<-ctx.Done()
	off, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.set(off, false); err != nil {
		p.log.Error(err, "the pod keeps the leader label after leading")
	}
	return nil
}
