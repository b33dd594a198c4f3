package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
)

// Remote is a second control plane, for the remote clusters that
// spec.kubeConfig names. weir's controllers do not run against it.
type Remote struct {
	Cluster *localcluster.Cluster
	// Client has admin rights on it, without a cache.
	Client client.Client
	// Kubeconfig is its admin kubeconfig: a server on loopback, the CA and
	// a token, all inline.
	Kubeconfig []byte
}

// StartRemote starts another control plane for one test and stops it when
// the test ends. With nodes it runs the scheduler and a simulated node, so
// that Deployments become Available; without, it only stores objects.
func StartRemote(t testing.TB, nodes bool) *Remote {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: t.TempDir(), NoNodes: !nodes, Nodes: 1})
	if err != nil {
		t.Fatalf("starting the remote control plane: %v", err)
	}
	t.Cleanup(c.Stop)
	kc, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return &Remote{Cluster: c, Client: cl, Kubeconfig: kc}
}

// Namespace creates namespace ns in the remote cluster.
func (r *Remote) Namespace(t testing.TB, ns string) {
	t.Helper()
	if err := r.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
}

// KubeconfigSecret writes, in namespace ns of the home cluster, a Secret
// name whose key holds kubeconfig, as `flux create secret` would for
// spec.kubeConfig.secretRef.
func (e *Env) KubeconfigSecret(t testing.TB, ns, name, key string, kubeconfig []byte) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{key: kubeconfig}}
	if err := e.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}
