package localcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/weirhq/weir/internal/localcluster"
)

func TestClusterRunsPodsAndKeepsDataAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	start := time.Now()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ready in %s", time.Since(start))
	defer c.Stop()

	// The kubeconfig in the state folder works as kubectl would use it.
	cfg, err := clientcmd.BuildConfigFromFlags("", localcluster.KubeconfigPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != localcluster.KubernetesVersion {
		t.Errorf("server version %s, want %s", v.GitVersion, localcluster.KubernetesVersion)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 2 {
		t.Fatalf("want 2 nodes, got %d (%v)", len(nodes.Items), err)
	}

	// A Deployment becomes Available on the simulated nodes.
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	created := time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the Deployment to be Available", func() bool {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 3
	})
	t.Logf("Deployment Available after %s", time.Since(created))

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pids := componentPIDs(t, dir)
	c.Stop()
	for name, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}

	// Same state folder: same data.
	c2, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	cfg2, err := clientcmd.BuildConfigFromFlags("", localcluster.KubeconfigPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	got, err := kubernetes.NewForConfigOrDie(cfg2).CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("the ConfigMap did not survive a restart: %v %v", got, err)
	}
}

func TestStartFailsClearlyWithoutBinaries(t *testing.T) {
	_, err := localcluster.Start(context.Background(), localcluster.Options{StateDir: t.TempDir(), BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make controlplane") {
		t.Fatalf("want an error that says how to build the binaries, got %v", err)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func componentPIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, name := range localcluster.Components() {
		b, err := os.ReadFile(filepath.Join(dir, "run", name+".pid"))
		if err != nil {
			t.Fatalf("no pid file for %s: %v", name, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		out[name] = pid
	}
	return out
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// A component that dies is started again alone while the rest keeps
// running, as a kubelet restarts a static pod; the data stays.
func TestSuperviseRestartsADeadComponentAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	supervised := make(chan error, 1)
	go func() { supervised <- c.Supervise(ctx, t.Logf) }()
	defer func() {
		cancel()
		if err := <-supervised; err != nil {
			t.Errorf("Supervise: %v", err)
		}
	}()

	cfg, err := clientcmd.BuildConfigFromFlags("", localcluster.KubeconfigPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		before := componentPIDs(t, dir)
		if err := syscall.Kill(before[name], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 2*time.Minute, name+" to run again under a new pid", func() bool {
			b, err := os.ReadFile(filepath.Join(dir, "run", name+".pid"))
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && pid != before[name] && processAlive(pid)
		})
		waitUntil(t, 2*time.Minute, "the API server to answer after "+name+" was killed", func() bool {
			got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
			return err == nil && got.Data["k"] == "v"
		})
		after := componentPIDs(t, dir)
		for other, pid := range before {
			if other != name && after[other] != pid {
				t.Errorf("killing %s restarted %s too (pid %d -> %d)", name, other, pid, after[other])
			}
		}
	}
}
