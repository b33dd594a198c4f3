// Package identitytest checks that the RBAC `weir install` grants is what
// weir needs, by running weir as the installed ServiceAccount: the
// executable is taken out of an image built by internal/image (this test
// binary, which acts as weir when asked: the kwok nodes run no containers)
// and given a kubeconfig holding a token of that ServiceAccount. No
// controller runs in the test process, so that the one run as the
// ServiceAccount is the only one.
package identitytest

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/cli"
	"github.com/weirhq/weir/internal/image"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/testenv"
)

// asWeir makes the test binary act as the weir command.
const asWeir = "WEIR_IDENTITY_AS_WEIR"

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(asWeir) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	ctrllog.SetLogger(logr.Discard())
	testenv.Main(m, &env, testenv.WithoutControllers())
}

// weirFromImage builds an image holding this test binary as weir and
// returns the executable extracted from the image's layer.
func weirFromImage(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("# no CA needed on loopback\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	idx, err := image.Build(image.Options{Binaries: map[string]string{platform: self}, CACerts: ca, Version: "test", Stored: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := image.WriteLayout(filepath.Join(dir, "layout"), idx); err != nil {
		t.Fatal(err)
	}
	read, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := read.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("the layout holds %v (%v)", m, err)
	}
	img, err := read.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	entry := strings.TrimPrefix(cfg.Config.Entrypoint[0], "/")
	out := filepath.Join(dir, "weir")
	fsys := mutate.Extract(img) // the image's file system, as a runtime unpacks it
	defer fsys.Close()
	tr := tar.NewReader(fsys)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != entry {
			continue
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the image's entrypoint %s is not in its layers: %v", entry, err)
	}
	return out
}

// kubeconfigFor writes a kubeconfig holding a token of the ServiceAccount
// (a TokenRequest, as the kubelet mounts one into weir's pod).
func kubeconfigFor(t *testing.T, ns, sa string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := env.Config.CAData
	if len(ca) == 0 && env.Config.CAFile != "" {
		if ca, err = os.ReadFile(env.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["weir"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["weir"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "weir"}
	kc.CurrentContext = "weir"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// runInstalled runs weir as the Deployment of o would (its args, the
// artifact and probe addresses moved to loopback, POD_NAME the pod kwok
// made for the Deployment), with the kubeconfig of the installed
// ServiceAccount, watching only objects labelled selector. It returns the
// pod's name, the path of weir's log and a function that stops weir (also
// called at cleanup).
func runInstalled(t *testing.T, bin string, o install.Options, selector string) (string, string, func()) {
	t.Helper()
	comps, err := install.Components(o)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, c := range comps {
		if c.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(c.Object, "spec", "template", "spec", "containers")
		for _, a := range containers[0].(map[string]any)["args"].([]any) {
			args = append(args, a.(string))
		}
	}
	var kept []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--storage-addr="), strings.HasPrefix(a, "--storage-adv-addr="), strings.HasPrefix(a, "--metrics-addr="),
			strings.HasPrefix(a, "--health-addr="), strings.HasPrefix(a, "--storage-path="), strings.HasPrefix(a, "--receiver-addr="):
			continue
		}
		kept = append(kept, a)
	}
	kept = append(kept,
		"--kubeconfig", kubeconfigFor(t, o.Namespace, install.Name),
		"--storage-path", t.TempDir(),
		"--storage-addr=127.0.0.1:0",
		"--metrics-addr=0", "--health-addr=0", "--receiver-addr=127.0.0.1:0",
		"--watch-label-selector", selector,
	)
	logPath := filepath.Join(t.TempDir(), "weir.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	pods := &corev1.PodList{}
	if err := env.Client.List(context.Background(), pods, client.InNamespace(o.Namespace), client.MatchingLabels{"app": install.Name}); err != nil || len(pods.Items) == 0 {
		t.Fatalf("no pod of the installed Deployment (%v)", err)
	}
	pod := pods.Items[0].Name
	cmd := exec.Command(bin, kept...)
	cmd.Env = append(os.Environ(), asWeir+"=1", "RUNTIME_NAMESPACE="+o.Namespace, "POD_NAME="+pod)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				lines := strings.Split(string(b), "\n")
				t.Logf("weir's log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		})
	}
	t.Cleanup(stop)
	return pod, logPath, stop
}

// leaderLabel reads the leader label of the pod.
func leaderLabel(t *testing.T, ns, pod string) string {
	t.Helper()
	p := &corev1.Pod{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: pod}, p); err != nil {
		t.Fatal(err)
	}
	return p.Labels[manager.LeaderLabel]
}

// syncRepo creates, in ns, a GitRepository of repo and a Kustomization of
// path, labelled for the weir that watches selector.
func syncRepo(t *testing.T, ns, url, label string) *kustomizev1.Kustomization {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"identity": label}
	src := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "repo", Labels: labels},
		Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps", Labels: labels},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", Prune: true,
			Timeout:   &metav1.Duration{Duration: time.Minute},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "repo"}},
	}
	for _, o := range []client.Object{src, ks} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

// waitReadyCondition waits until the Kustomization's Ready condition is
// status with a message holding want, and returns the message.
func waitReadyCondition(t *testing.T, ks *kustomizev1.Kustomization, status metav1.ConditionStatus, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &kustomizev1.Kustomization{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), got); err == nil {
			c := conditions.Get(got, meta.ReadyCondition)
			if c != nil && c.Status == status && got.Status.ObservedGeneration == got.Generation && strings.Contains(c.Message, want) {
				return c.Message
			}
			if time.Now().After(deadline) {
				t.Fatalf("Kustomization %s/%s not Ready=%s within %s: %+v", ks.Namespace, ks.Name, status, timeout, got.Status.Conditions)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// weir installed with its default RBAC, run as its ServiceAccount from the
// image, reconciles a repository that writes into another namespace; in
// least-privilege mode, a Kustomization that names no serviceAccountName
// acts as its namespace's default account and is refused, saying which
// permission was missing.
func TestTheInstalledIdentityIsEnough(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	bin := weirFromImage(t)
	t.Logf("weir taken out of its image in %s", time.Since(start).Round(time.Millisecond))
	target := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "cluster")
	repo.Commit("main", map[string]string{
		"apps/cm.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: written\n  namespace: %s\ndata:\n  by: weir\n", target),
	}, "initial")

	t.Run("cluster-admin", func(t *testing.T) {
		o := install.Options{Namespace: env.Namespace(t), Image: "weir:test"}
		if err := install.InstallComponents(ctx, env.Client, o, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		_, logPath, _ := runInstalled(t, bin, o, "identity=admin")
		ks := syncRepo(t, o.Namespace, git.HTTPURL("cluster"), "admin")
		waitReadyCondition(t, ks, metav1.ConditionTrue, "", 2*time.Minute)
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: target, Name: "written"}, cm); err != nil || cm.Data["by"] != "weir" {
			t.Errorf("the ConfigMap was not applied as the installed identity: %v %v", err, cm.Data)
		}
		fluxCLISeesWeir(t, o, logPath, ks)
		instanceShapesInstallation(t, o)
	})

	t.Run("least privilege", func(t *testing.T) {
		o := install.Options{Namespace: env.Namespace(t), Image: "weir:test", LeastPrivilege: true}
		if err := install.InstallComponents(ctx, env.Client, o, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		pod, _, stop := runInstalled(t, bin, o, "identity=least")
		ks := syncRepo(t, o.Namespace, git.HTTPURL("cluster"), "least")
		msg := waitReadyCondition(t, ks, metav1.ConditionFalse, "forbidden", 2*time.Minute)
		for _, want := range []string{"system:serviceaccount:" + o.Namespace + ":default", "configmaps", "forbidden"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Ready says %q, want it to say %q", msg, want)
			}
		}
		// The leader labels its pod, which the artifact Service selects,
		// and takes the label off when it stops.
		if got := leaderLabel(t, o.Namespace, pod); got != "true" {
			t.Errorf("the leading replica's pod has %s=%q, want true", manager.LeaderLabel, got)
		}
		svc := &corev1.Service{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: "source-controller"}, svc); err != nil || svc.Spec.Selector[manager.LeaderLabel] != "true" {
			t.Errorf("the artifact Service does not select the leader: %v %v", svc.Spec.Selector, err)
		}
		stop()
		if got := leaderLabel(t, o.Namespace, pod); got != "" {
			t.Errorf("the pod keeps %s=%q after weir stopped", manager.LeaderLabel, got)
		}
	})
}

// instanceShapesInstallation applies a FluxInstance to the namespace weir
// runs in and checks that weir, as its ServiceAccount, reshapes its own
// in-cluster objects: the components and patches reach the Deployment's
// flags, networkPolicy: false removes the NetworkPolicies, the image that
// runs is kept.
func instanceShapesInstallation(t *testing.T, o install.Options) {
	ctx := context.Background()
	fi := &controlplanev1.FluxInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: controlplanev1.InstanceName},
		Spec: controlplanev1.FluxInstanceSpec{
			Distribution:   controlplanev1.Distribution{Version: "2.7.x", Registry: "ghcr.io/fluxcd"},
			Components:     []controlplanev1.Component{"source-controller", "kustomize-controller", "helm-controller"},
			Cluster:        &controlplanev1.Cluster{NetworkPolicy: false, Domain: "cluster.example"},
			CommonMetadata: &controlplanev1.CommonMetadata{Labels: map[string]string{"team": "platform"}},
			Kustomize: &controlplanev1.Kustomize{Patches: []kustomize.Patch{{
				Target: &kustomize.Selector{Kind: "Deployment"},
				Patch:  "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --concurrent=10\n",
			}}},
		},
	}
	if err := env.Client.Create(ctx, fi); err != nil {
		t.Fatal(err)
	}
	// Before weir stops (cleanups run last first): deleting the instance
	// removes what it applied.
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fi) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := &controlplanev1.FluxInstance{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fi), got); err != nil {
			t.Fatal(err)
		}
		if conditions.IsTrue(got, meta.ReadyCondition) {
			if len(got.Status.Components) != 3 || got.Status.Components[0].Repository != "weir" || got.Status.Components[0].Tag != "test" {
				t.Errorf("status.components = %+v, want three, each weir:test", got.Status.Components)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FluxInstance not Ready: %+v", got.Status.Conditions)
		}
		time.Sleep(250 * time.Millisecond)
	}
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: install.Name}, d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--components=source-controller,kustomize-controller,helm-controller", "--concurrent=10",
		"--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.example."} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("the Deployment's args %v lack %s", c.Args, want)
		}
	}
	if c.Image != "weir:test" || d.Labels["team"] != "platform" {
		t.Errorf("Deployment image %q labels %v: want the installed image kept and commonMetadata's label", c.Image, d.Labels)
	}
	policies := &networkingv1.NetworkPolicyList{}
	if err := env.Client.List(ctx, policies, client.InNamespace(o.Namespace)); err != nil {
		t.Fatal(err)
	}
	if len(policies.Items) != 0 {
		t.Errorf("%d NetworkPolicies left with spec.cluster.networkPolicy false", len(policies.Items))
	}
}

// fluxLogLine is what `flux logs` (flux2 v2.7, cmd/flux/logs.go) reads of
// each JSON line: every field a string, or the line stops the command.
type fluxLogLine struct {
	Timestamp      string `json:"ts"`
	Level          string `json:"level"`
	Message        string `json:"msg"`
	Error          string `json:"error,omitempty"`
	Logger         string `json:"logger"`
	Kind           string `json:"reconciler kind,omitempty"`
	ControllerKind string `json:"controllerKind,omitempty"`
	Name           string `json:"name,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
}

// fluxCLISeesWeir reads what the flux CLI (v2.7) reads, the way it reads
// it: `flux check` and `flux version` list the Deployments labelled
// app.kubernetes.io/part-of=flux in the namespace, wait for each to be
// Current (kstatus) and print each container's image tag, then list the
// CRDs with that label and need a stored version of each; the
// distribution comes from the GitRepository CRD's labels. `flux logs
// --kind Kustomization --name apps` picks a pod of each such Deployment by
// its template's labels, reads the container named manager, and keeps
// the JSON lines whose controllerKind, name and namespace match.
func fluxCLISeesWeir(t *testing.T, o install.Options, logPath string, ks *kustomizev1.Kustomization) {
	ctx := context.Background()
	deps := &appsv1.DeploymentList{}
	if err := env.Client.List(ctx, deps, client.InNamespace(o.Namespace), client.MatchingLabels{"app.kubernetes.io/part-of": "flux"}); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 1 || deps.Items[0].Name != install.Name {
		t.Fatalf("flux check finds %d controllers, want weir's Deployment", len(deps.Items))
	}
	d := &deps.Items[0]
	m, err := apiruntime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := kstatus.Compute(&unstructured.Unstructured{Object: m}); err != nil || res.Status != kstatus.CurrentStatus {
		t.Errorf("flux check: deployment weir is %v (%v), want Current", res, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		path := c.Image[strings.LastIndex(c.Image, "/")+1:]
		if name, tag, ok := strings.Cut(path, ":"); !ok || name == "" || tag == "" {
			t.Errorf("flux version: image %q has no tag", c.Image)
		}
	}
	crds := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := env.Client.List(ctx, crds, client.MatchingLabels{"app.kubernetes.io/part-of": "flux"}); err != nil {
		t.Fatal(err)
	}
	gitCRD := false
	for _, c := range crds.Items {
		if len(c.Status.StoredVersions) == 0 {
			t.Errorf("flux check: no stored versions for %s", c.Name)
		}
		if c.Name == "gitrepositories.source.toolkit.fluxcd.io" {
			gitCRD = c.Labels["app.kubernetes.io/version"] != ""
		}
	}
	if !gitCRD {
		t.Errorf("flux check: the GitRepository CRD is missing or has no app.kubernetes.io/version label (the distribution line)")
	}

	pods := &corev1.PodList{}
	if err := env.Client.List(ctx, pods, client.InNamespace(o.Namespace), client.MatchingLabels(d.Spec.Template.Labels)); err != nil || len(pods.Items) == 0 {
		t.Fatalf("flux logs finds no pod of the Deployment (%v)", err)
	}
	if cs := pods.Items[0].Spec.Containers; len(cs) > 1 && !slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == "manager" }) {
		t.Errorf("flux logs: the pod has %d containers and none named manager", len(cs))
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	matched, lines := 0, 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		lines++
		var l fluxLogLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("flux logs stops at this line (parse error: %v):\n%s", err, line)
		}
		kind := l.Kind
		if kind == "" {
			kind = l.ControllerKind
		}
		if strings.EqualFold(kind, "Kustomization") && strings.EqualFold(l.Name, ks.Name) && strings.EqualFold(l.Namespace, ks.Namespace) {
			matched++
		}
	}
	if matched == 0 {
		t.Errorf("flux logs --kind Kustomization --name %s -n %s finds none of weir's %d JSON lines", ks.Name, ks.Namespace, lines)
	}
}
