package localcluster_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weirhq/weir/internal/localcluster"
)

// A cluster started with NoNodes serves the API and makes the default
// ServiceAccount of a new Namespace (the controller manager runs), but
// runs no scheduler, no kwok and has no node.
func TestNoNodesRunsTheAPIServerAndControllerManagerOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir, NoNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	t.Logf("ready in %s", time.Since(start))
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 0 {
		t.Errorf("want no node, got %d (%v)", len(nodes.Items), err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := cs.CoreV1().ServiceAccounts("shop").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the default ServiceAccount of a new Namespace was never made")
		case <-time.After(100 * time.Millisecond):
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		for _, name := range []string{"kube-scheduler", "kwok"} {
			if bytes.Contains(b, []byte("/"+name+"\x00")) {
				t.Errorf("%s runs: %s", name, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
	}
}
