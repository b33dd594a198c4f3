package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"helm.sh/helm/v4/pkg/action"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/testenv"
)

// testHook is a chart test that passes: a Job that kwok completes.
const testHook = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: test
          image: example.invalid/test:1
`

// TestKubeConfigInstallsInTheRemoteCluster runs HelmReleases whose
// spec.kubeConfig names a second control plane (with a simulated node):
// the release, its storage, tests, health, drift correction, rollback and
// uninstall are there and not here; the status stays here.
func TestKubeConfigInstallsInTheRemoteCluster(t *testing.T) {
	remote := testenv.StartRemote(t, true)
	ctx := context.Background()

	t.Run("install, test, drift, upgrade, rollback and uninstall happen in the remote cluster", func(t *testing.T) {
		f := newFixture(t)
		files := chartFiles("1.0.0")
		files["templates/test.yaml"] = testHook
		f.push("1.0.0", files)
		remote.Namespace(t, f.ns)
		env.KubeconfigSecret(t, f.ns, "prod-kubeconfig", "value", remote.Kubeconfig)
		hr := f.release("web", "greeting: hi", func(h *helmv2.HelmRelease) {
			h.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}}
			h.Spec.Test = &helmv2.Test{Enable: true}
			h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled}
			h.Spec.Upgrade = &helmv2.Upgrade{Remediation: &helmv2.UpgradeRemediation{Retries: 1}}
		})
		// Ready waits for the Deployment to be Available: only the remote
		// cluster runs it.
		got := f.waitReady(hr, "1.0.0")
		if !conditions.IsTrue(got, helmv2.TestSuccessCondition) {
			t.Errorf("TestSuccess is not True: %s", describe(got))
		}
		if err := remote.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web-test"}, &batchv1.Job{}); err != nil {
			t.Errorf("the test hook did not run in the remote cluster: %v", err)
		}
		if rels := remoteReleases(t, remote, f.ns); len(rels) != 1 || rels[0].Name != "web" || rels[0].Version != 1 {
			t.Errorf("want release web v1 stored in the remote cluster, got %d releases", len(rels))
		}
		if n := len(helmReleases(t, f.ns)); n != 0 {
			t.Errorf("%d releases stored in the home cluster", n)
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "web"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Deployment was installed in the home cluster (%v)", err)
		}
		if d := remoteConfig(t, remote, f.ns, "web-config"); d["greeting"] != "hi" {
			t.Errorf("remote ConfigMap %v, want greeting hi", d)
		}

		// A hand edit in the remote cluster is corrected there.
		dep := &appsv1.Deployment{}
		key := client.ObjectKey{Namespace: f.ns, Name: "web"}
		if err := remote.Client.Get(ctx, key, dep); err != nil {
			t.Fatal(err)
		}
		three := int32(3)
		dep.Spec.Replicas = &three
		if err := remote.Client.Update(ctx, dep); err != nil {
			t.Fatal(err)
		}
		annotate(t, hr, meta.ReconcileRequestAnnotation)
		deadline := time.Now().Add(60 * time.Second)
		for {
			if err := remote.Client.Get(ctx, key, dep); err == nil && *dep.Spec.Replicas == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the hand edit in the remote cluster was not corrected: replicas %d", *dep.Spec.Replicas)
			}
			time.Sleep(100 * time.Millisecond)
		}

		// An upgrade, then one the API server refuses, rolled back.
		setSpec(t, hr, func(h *helmv2.HelmRelease) { h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bye"}`)} })
		f.wait(hr, 90*time.Second, "to upgrade", func(h *helmv2.HelmRelease) bool {
			l := h.Status.History.Latest()
			return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation && l != nil && l.Version == 2
		})
		if d := remoteConfig(t, remote, f.ns, "web-config"); d["greeting"] != "bye" {
			t.Errorf("remote ConfigMap %v after the upgrade, want greeting bye", d)
		}
		setSpec(t, hr, func(h *helmv2.HelmRelease) {
			h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bad","port":99999}`)}
		})
		got = f.wait(hr, 90*time.Second, "to roll back", func(h *helmv2.HelmRelease) bool {
			return conditions.GetReason(h, helmv2.RemediatedCondition) == helmv2.RollbackSucceededReason
		})
		if d := remoteConfig(t, remote, f.ns, "web-config"); d["greeting"] != "bye" {
			t.Errorf("remote ConfigMap %v after the rollback, want greeting bye", d)
		}

		// Deleting the HelmRelease uninstalls the release there.
		if err := env.Client.Delete(ctx, hr); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), &helmv2.HelmRelease{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the HelmRelease is still there (%v): %s", err, describe(&helmv2.HelmRelease{}))
			}
		}
		if n := len(remoteReleases(t, remote, f.ns)); n != 0 {
			t.Errorf("%d releases left in the remote cluster after the deletion", n)
		}
		if err := remote.Client.Get(ctx, key, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Deployment is still in the remote cluster after the uninstall (%v)", err)
		}
	})

	t.Run("unusable kubeconfigs and an unreachable cluster are refused with a clear message", func(t *testing.T) {
		f := newFixture(t, "1.0.0")
		withExec := editKubeconfig(t, remote.Kubeconfig, func(c *clientcmdapi.Config) {
			for _, u := range c.AuthInfos {
				u.Token = ""
				u.Exec = &clientcmdapi.ExecConfig{Command: "gke-gcloud-auth-plugin", APIVersion: "client.authentication.k8s.io/v1"}
			}
		})
		unreachable := editKubeconfig(t, remote.Kubeconfig, func(c *clientcmdapi.Config) {
			for _, cl := range c.Clusters {
				cl.Server = "https://127.0.0.1:1"
			}
		})
		cases := []struct {
			name    string
			data    []byte
			reason  string
			want    []string
			stalled bool
		}{
			{name: "broken", data: []byte("{not yaml"), reason: "RESTClientError",
				want: []string{"invalid KubeConfig in secret '" + f.ns + "/broken'"}},
			{name: "exec", data: withExec, reason: "RESTClientError",
				want: []string{"exec plugin", "gke-gcloud-auth-plugin", "--insecure-kubeconfig-exec"}},
			{name: "unreachable", data: unreachable, reason: "GetLastReleaseFailed",
				want: []string{"the remote cluster https://127.0.0.1:1 of KubeConfig secret '" + f.ns + "/unreachable' cannot be reached"}},
		}
		for _, c := range cases {
			env.KubeconfigSecret(t, f.ns, c.name, "value", c.data)
			f.release(c.name, "", func(h *helmv2.HelmRelease) {
				h.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: c.name}}
			})
		}
		for _, c := range cases {
			got := f.waitReason(&helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: c.name}}, c.reason)
			msg := conditions.GetMessage(got, meta.ReadyCondition)
			t.Logf("%s: %s", c.name, msg)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: the message should say %q: %q", c.name, w, msg)
				}
			}
			if conditions.IsStalled(got) != c.stalled || got.Status.InstallFailures != 0 {
				t.Errorf("%s: want a retry that counts no install failure: %s (install failures %d)", c.name, describe(got), got.Status.InstallFailures)
			}
		}
		if n := len(helmReleases(t, f.ns)); n != 0 {
			t.Errorf("%d releases installed in the home cluster", n)
		}
	})
}

// remoteReleases lists the releases of a namespace of the remote cluster.
func remoteReleases(t *testing.T, remote *testenv.Remote, ns string) []*release.Release {
	t.Helper()
	cfg := action.NewConfiguration()
	if err := cfg.Init(helm.NewRESTClientGetter(remote.Cluster.RESTConfig(), ns), ns, "secret"); err != nil {
		t.Fatal(err)
	}
	list := action.NewList(cfg)
	list.All = true
	res, err := list.Run()
	if err != nil {
		t.Fatal(err)
	}
	var out []*release.Release
	for _, r := range res {
		if rel, ok := r.(*release.Release); ok {
			out = append(out, rel)
		}
	}
	return out
}

func remoteConfig(t *testing.T, remote *testenv.Remote, ns, name string) map[string]string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := remote.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatalf("reading ConfigMap %s in the remote cluster: %v", name, err)
	}
	return cm.Data
}

func editKubeconfig(t *testing.T, kubeconfig []byte, edit func(*clientcmdapi.Config)) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
