package logs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weirhq/weir/internal/install"
)

// Pods is the log of weir running in a cluster: the pods of its Deployment,
// read through the pods/log API.
type Pods struct {
	// Client reads the Deployment, its pods and their logs.
	Client kubernetes.Interface
	// Namespace and Deployment name weir's Deployment; empty means
	// flux-system and weir, as `weir install` names them.
	Namespace, Deployment string
}

// Open finds the pods by the Deployment's own label selector and opens the
// log of its first container (weir's manager) in each, sorted by pod name.
func (p Pods) Open(ctx context.Context, o OpenOptions) ([]Stream, error) {
	ns, name := p.Namespace, p.Deployment
	if ns == "" {
		ns = install.Namespace
	}
	if name == "" {
		name = install.Name
	}
	d, err := p.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("weir does not run in this cluster (no Deployment %s/%s); for a `weir up` run, read its log with --state-dir", ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading weir's Deployment %s/%s: %w", ns, name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("reading the pod selector of Deployment %s/%s: %w", ns, name, err)
	}
	pods, err := p.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of Deployment %s/%s: %w", ns, name, err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("Deployment %s/%s has no pods", ns, name)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	opts := &corev1.PodLogOptions{Follow: o.Follow}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		opts.Container = cs[0].Name
	}
	if !o.Since.IsZero() {
		opts.SinceTime = &metav1.Time{Time: o.Since}
	}
	if o.Follow && o.TailLines > 0 {
		n := int64(o.TailLines)
		opts.TailLines = &n
	}
	var streams []Stream
	for _, pod := range pods.Items {
		rc, err := p.Client.CoreV1().Pods(ns).GetLogs(pod.Name, opts).Stream(ctx)
		if err != nil {
			for _, s := range streams {
				s.Close()
			}
			return nil, fmt.Errorf("reading the log of pod %s/%s: %w", ns, pod.Name, err)
		}
		streams = append(streams, Stream{Name: "pod " + ns + "/" + pod.Name, ReadCloser: rc})
	}
	return streams, nil
}
