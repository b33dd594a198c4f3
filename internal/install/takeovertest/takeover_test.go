// Package takeovertest moves a cluster from Flux to weir: Flux's
// controllers and the objects they left (inventories, field managers
// kustomize-controller and helm-controller, a Helm release Secret) are set
// up as Flux leaves them, `weir install --takeover` stops Flux, and weir's
// controllers adopt everything without deleting or re-creating an object.
package takeovertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithoutControllers()) }

// fluxController runs a Deployment named as one of Flux's controllers, as
// `flux install` labels it (kwok gives it a pod).
func fluxController(t *testing.T, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: name, Labels: map[string]string{
			"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/component": name, "control-plane": "controller"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/" + name + ":v1.7.0"}}},
			},
		},
	}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// applyAs server-side applies a YAML document as field manager owner.
func applyAs(t *testing.T, owner, doc string, labels map[string]string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range labels {
		l[k] = v
	}
	u.SetLabels(l)
	if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(owner), client.ForceOwnership); err != nil {
		t.Fatalf("applying %s as %s: %v", u.GetName(), owner, err)
	}
	return u
}

// identity is an object's identity and the fields that show it was
// re-created or rewritten.
type identity struct {
	uid        types.UID
	generation int64
}

func snapshotOf(t *testing.T, objs []client.Object) map[string]identity {
	t.Helper()
	out := map[string]identity{}
	for _, o := range objs {
		key := fmt.Sprintf("%T %s", o, client.ObjectKeyFromObject(o))
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("reading %s: %v", key, err)
		}
		out[key] = identity{uid: o.GetUID(), generation: o.GetGeneration()}
	}
	return out
}

// TestTakeoverFromFlux: weir takes over a cluster Flux reconciled, with
// zero objects deleted or re-created.
func TestTakeoverFromFlux(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"source-controller", "kustomize-controller", "helm-controller", "notification-controller"} {
		fluxController(t, name)
	}
	apps := env.Namespace(t)
	fluxNS := env.Namespace(t)

	// A repository and what kustomize-controller applied from it.
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "fleet")
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: " + apps + "\ndata:\n  mode: production\n"
	dep := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: " + apps + "\nspec:\n  replicas: 1\n" +
		"  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n" +
		"    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
	commit := repo.Commit("main", map[string]string{"apps/settings.yaml": cm, "apps/web.yaml": dep}, "apps").String()
	revision := "main@sha1:" + commit
	gr := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "fleet"},
		Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL("fleet"), Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}
	if err := env.Client.Create(ctx, gr); err != nil {
		t.Fatal(err)
	}
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps", Finalizers: []string{"finalizers.fluxcd.io"}},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "fleet"}},
	}
	if err := env.Client.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	ksLabels := map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": fluxNS}
	applyAs(t, "kustomize-controller", cm, ksLabels)
	applyAs(t, "kustomize-controller", dep, ksLabels)
	ks.Status = kustomizev1.KustomizationStatus{
		ObservedGeneration:    ks.Generation,
		LastAppliedRevision:   revision,
		LastAttemptedRevision: revision,
		Inventory: &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{
			{ID: apps + "_settings__ConfigMap", Version: "v1"},
			{ID: apps + "_web_apps_Deployment", Version: "v1"},
		}},
	}
	conditions.MarkTrue(ks, meta.ReadyCondition, meta.ReconciliationSucceededReason, "Applied revision: %s", revision)
	if err := env.Client.Status().Update(ctx, ks); err != nil {
		t.Fatal(err)
	}

	// A chart and the release helm-controller installed from it.
	charts := testenv.NewHelmRepo(t, "", "")
	chartDir := testenv.WriteChart(t, "podinfo", "6.5.0", nil)
	charts.AddChart(t, chartDir)
	hrepo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "charts"},
		Spec:       sourcev1.HelmRepositorySpec{URL: charts.URL, Interval: metav1.Duration{Duration: time.Hour}},
	}
	if err := env.Client.Create(ctx, hrepo); err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"data": map[string]any{"greeting": "from-flux"}}
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "podinfo", Finalizers: []string{"finalizers.fluxcd.io"}},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "podinfo", Version: "6.5.0",
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"},
			}},
			Values: jsonValues(t, values),
		},
	}
	if err := env.Client.Create(ctx, hr); err != nil {
		t.Fatal(err)
	}
	rel := helmInstall(t, fluxNS, "podinfo", chartDir, values)
	hr.Status = helmv2.HelmReleaseStatus{
		ObservedGeneration:         hr.Generation,
		LastAttemptedGeneration:    hr.Generation,
		LastAttemptedRevision:      "6.5.0",
		LastAttemptedConfigDigest:  helmConfigDigest(t, values),
		LastAttemptedReleaseAction: helmv2.ReleaseActionInstall,
		HelmChart:                  fluxNS + "/" + fluxNS + "-podinfo",
		StorageNamespace:           fluxNS,
		History: helmv2.Snapshots{{
			APIVersion: "v1", Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version,
			ChartName: "podinfo", ChartVersion: "6.5.0", AppVersion: rel.Chart.Metadata.AppVersion,
			ConfigDigest: helmConfigDigest(t, values), Status: rel.Info.Status.String(),
			FirstDeployed: metav1.NewTime(rel.Info.FirstDeployed), LastDeployed: metav1.NewTime(rel.Info.LastDeployed),
		}},
	}
	msg := fmt.Sprintf("Helm install succeeded for release %s/%s.v%d with chart podinfo@6.5.0", rel.Namespace, rel.Name, rel.Version)
	conditions.MarkTrue(hr, helmv2.ReleasedCondition, helmv2.InstallSucceededReason, "%s", msg)
	conditions.MarkTrue(hr, meta.ReadyCondition, helmv2.InstallSucceededReason, "%s", msg)
	if err := env.Client.Status().Update(ctx, hr); err != nil {
		t.Fatal(err)
	}

	watched := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "settings"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "web"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "podinfo"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "sh.helm.release.v1.podinfo.v1"}},
		&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}},
		&helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "podinfo"}},
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "fleet"}},
	}
	before := snapshotOf(t, watched)

	// weir install --takeover: Flux stops, weir is installed.
	stopped, err := install.StopFlux(ctx, env.Client, install.Namespace, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stopped, ",") != "helm-controller,kustomize-controller,notification-controller,source-controller" {
		t.Errorf("StopFlux scaled %v", stopped)
	}
	for _, name := range stopped {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: install.Namespace, Name: name}, d); err != nil {
			t.Fatal(err)
		}
		if ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[install.ReplicasAnnotation] != "1" {
			t.Errorf("Deployment %s: replicas %d, annotation %q; want 0 and the former 1 recorded", name, ptr.Deref(d.Spec.Replicas, 1), d.Annotations[install.ReplicasAnnotation])
		}
	}
	if err := install.InstallComponents(ctx, env.Client, install.Options{Image: "weir:test"}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = install.UninstallComponents(context.Background(), env.Client, install.Options{}) })

	// weir's controllers adopt what Flux left.
	stop, err := env.StartManager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	// A change pushed after the takeover proves weir now reconciles.
	next := repo.Commit("main", map[string]string{"apps/settings.yaml": strings.Replace(cm, "production", "staging", 1)}, "change").String()
	annotate(t, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "fleet"}})
	testenv.WaitFor(t, 90*time.Second, func() string {
		got := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ks), got); err != nil {
			return err.Error()
		}
		if got.Status.LastAppliedRevision != "main@sha1:"+next || !conditions.IsTrue(got, meta.ReadyCondition) {
			return "Kustomization: " + got.Status.LastAppliedRevision + " " + conditions.GetMessage(got, meta.ReadyCondition)
		}
		h := &helmv2.HelmRelease{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), h); err != nil {
			return err.Error()
		}
		// lastAttemptedValuesChecksum is written by weir only: the
		// status Flux left did not set it.
		if !conditions.IsTrue(h, meta.ReadyCondition) || h.Status.LastAttemptedValuesChecksum == "" {
			return "HelmRelease not reconciled by weir yet: " + conditions.GetMessage(h, meta.ReadyCondition)
		}
		return ""
	})
	// The HelmRelease was reconciled by weir: its chart source is weir's.
	testenv.WaitFor(t, 60*time.Second, func() string {
		chart := &sourcev1.HelmChart{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: fluxNS + "-podinfo"}, chart); err != nil {
			return "HelmChart: " + err.Error()
		}
		if !conditions.IsTrue(chart, meta.ReadyCondition) {
			return "HelmChart not Ready"
		}
		return ""
	})
	settings := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: apps, Name: "settings"}, settings); err != nil || settings.Data["mode"] != "staging" {
		t.Errorf("weir did not apply the change pushed after the takeover: %v %v", err, settings.Data)
	}

	after := snapshotOf(t, watched)
	for key, b := range before {
		a := after[key]
		if a.uid != b.uid {
			t.Errorf("%s was re-created (UID %s, then %s)", key, b.uid, a.uid)
		}
		if strings.Contains(key, "Deployment") && a.generation != b.generation {
			t.Errorf("%s was rewritten: generation %d, then %d", key, b.generation, a.generation)
		}
	}
	releases := &corev1.SecretList{}
	if err := env.Client.List(ctx, releases, client.InNamespace(fluxNS), client.MatchingLabels{"owner": "helm", "name": "podinfo"}); err != nil {
		t.Fatal(err)
	}
	if len(releases.Items) != 1 {
		var names []string
		for _, s := range releases.Items {
			names = append(names, s.Name)
		}
		t.Errorf("Helm release Secrets after the takeover: %v; want only Flux's v1 (weir upgraded a release already in sync)", names)
	}
}

// annotate requests a reconcile of obj.
func annotate(t *testing.T, obj client.Object) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// helmInstall installs a release with the Helm SDK as helm-controller
// does: release Secrets in the namespace, objects written by field manager
// helm-controller (set by weir's helm package, as Flux sets it).
func helmInstall(t *testing.T, ns, name, chartDir string, values map[string]any) *release.Release {
	t.Helper()
	ac := action.NewConfiguration()
	if err := ac.Init(helm.NewRESTClientGetter(env.Config, ns), ns, "secret"); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(ac)
	inst.ReleaseName, inst.Namespace = name, ns
	inst.WaitStrategy = kube.HookOnlyStrategy
	res, err := inst.RunWithContext(context.Background(), ch, values)
	if err != nil {
		t.Fatalf("installing the release as helm-controller: %v", err)
	}
	rel, ok := res.(*release.Release)
	if !ok {
		t.Fatalf("release of type %T", res)
	}
	return rel
}

func jsonValues(t *testing.T, v map[string]any) *apiextensionsJSON {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return &apiextensionsJSON{Raw: j}
}

// apiextensionsJSON is the type of HelmReleaseSpec.Values.
type apiextensionsJSON = apiextensionsv1.JSON

// helmConfigDigest is LastAttemptedConfigDigest as helm-controller writes
// it (fluxcd/pkg/chartutil.DigestValues: sha256 of the values as YAML with
// sorted keys).
func helmConfigDigest(t *testing.T, values map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
