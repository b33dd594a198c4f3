package logs_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weirhq/weir/internal/logs"
)

// The pods source is tested with client-go's fake clientset, not against
// the local control plane: its nodes are kwok's, whose pods run no
// containers and so have no logs for the pods/log API to serve. What is
// checked here is what weir decides: which pods (the Deployment's own
// selector), which container, and what a user is told when weir is not
// in the cluster.

func TestThePodsOfWeirsDeploymentAreRead(t *testing.T) {
	labels := map[string]string{"app.kubernetes.io/name": "weir"}
	c := fake.NewClientset(
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "weir"},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager"}}}},
			},
		},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "weir-b", Labels: labels}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "weir-a", Labels: labels}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller-x", Labels: map[string]string{"app": "source-controller"}}},
	)
	streams, err := logs.Pods{Client: c}.Open(context.Background(), logs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range streams {
		names = append(names, s.Name)
		s.Close()
	}
	if got := strings.Join(names, ","); got != "pod flux-system/weir-a,pod flux-system/weir-b" {
		t.Errorf("read %s, want the two weir pods in name order", got)
	}
	// The fake serves "fake logs" for any pod: not JSON, printed as it is.
	var out []string
	err = logs.Read(context.Background(), logs.Pods{Client: c}, logs.Query{}, func(e logs.Entry) error {
		out = append(out, e.Format())
		return nil
	})
	if err != nil || strings.Join(out, "|") != "fake logs|fake logs" {
		t.Errorf("got %q, %v", out, err)
	}
}

func TestAClusterWithoutWeirSaysSo(t *testing.T) {
	_, err := logs.Pods{Client: fake.NewClientset()}.Open(context.Background(), logs.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "weir does not run in this cluster") || !strings.Contains(err.Error(), "--state-dir") {
		t.Fatalf("got %v", err)
	}
}
