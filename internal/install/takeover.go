package install

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FluxControllers are the Deployments of Flux's installations (flux
// install, flux bootstrap, Flux Operator) whose work weir takes over.
var FluxControllers = []string{
	"source-controller", "kustomize-controller", "helm-controller", "notification-controller",
	"image-reflector-controller", "image-automation-controller", "source-watcher", "flux-operator",
}

// ReplicasAnnotation records, on a Flux controller that StopFlux scaled to
// zero, the replicas it had, for a way back.
const ReplicasAnnotation = "weirhq.github.io/replicas-before-takeover"

// StopFlux scales Flux's controllers in namespace to zero replicas and
// waits until their pods are gone, so that weir and Flux never reconcile
// at the same time. It deletes nothing: objects, inventories, Helm
// releases and the controllers' Deployments stay, and each Deployment
// keeps its former replicas in ReplicasAnnotation. It returns the
// Deployments it scaled down; none when Flux does not run there.
func StopFlux(ctx context.Context, c client.Client, namespace string, timeout time.Duration) ([]string, error) {
	deps := &appsv1.DeploymentList{}
	if err := c.List(ctx, deps, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing the Deployments of %s: %w", namespace, err)
	}
	var stopped []*appsv1.Deployment
	var names []string
	for i := range deps.Items {
		d := &deps.Items[i]
		if !slices.Contains(FluxControllers, d.Name) {
			continue
		}
		stopped = append(stopped, d)
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if replicas == 0 {
			continue
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{ReplicasAnnotation: strconv.Itoa(int(replicas))}},
			"spec":     map[string]any{"replicas": 0},
		})
		if err != nil {
			return names, err
		}
		if err := c.Patch(ctx, d, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return names, fmt.Errorf("scaling Deployment %s/%s to zero: %w", namespace, d.Name, err)
		}
		names = append(names, d.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, d := range stopped {
		if err := waitNoPods(ctx, c, d); err != nil {
			return names, err
		}
	}
	return names, nil
}

// waitNoPods waits until no pod of d runs.
func waitNoPods(ctx context.Context, c client.Client, d *appsv1.Deployment) error {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return fmt.Errorf("reading the selector of Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	for {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return fmt.Errorf("listing the pods of Deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		if len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pods of Deployment %s/%s still run (pod %s): %w", len(pods.Items), d.Namespace, d.Name, pods.Items[0].Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
