package install_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/testenv"
)

// The control plane of this package has Flux's CRDs installed by testenv
// (with install.Install) and weir's controllers running. Uninstall takes
// the CRDs away from everything in the process, so its tests live in
// ./uninstalltest, on a control plane of their own.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// installedCRDs reads, from the cluster, every CRD that Install applies.
func installedCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	objs, err := install.Objects()
	if err != nil {
		t.Fatal(err)
	}
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: o.GetName()}, got); err != nil {
			t.Fatalf("reading CRD %s: %v", o.GetName(), err)
		}
		crds[got.Name] = got
	}
	if len(crds) == 0 {
		t.Fatal("Install applies no CRDs")
	}
	return crds
}

func TestInstallTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	// testenv installed once already; one more run makes sure the state
	// compared below is the one Install leaves.
	if err := install.Install(ctx, env.Client); err != nil {
		t.Fatalf("installing: %v", err)
	}
	before := map[string]string{}
	for name, crd := range installedCRDs(t) {
		before[name] = crd.ResourceVersion
	}
	ns := &corev1.Namespace{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: install.Namespace}, ns); err != nil {
		t.Fatalf("reading namespace %s: %v", install.Namespace, err)
	}
	nsVersion := ns.ResourceVersion

	if err := install.Install(ctx, env.Client); err != nil {
		t.Fatalf("installing again: %v", err)
	}

	// Server-side apply of an unchanged configuration writes nothing, so
	// no object gets a new resourceVersion.
	for name, crd := range installedCRDs(t) {
		if crd.ResourceVersion != before[name] {
			t.Errorf("CRD %s was written by the second install: resourceVersion %s, was %s", name, crd.ResourceVersion, before[name])
		}
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: install.Namespace}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.ResourceVersion != nsVersion {
		t.Errorf("namespace %s was written by the second install: resourceVersion %s, was %s", install.Namespace, ns.ResourceVersion, nsVersion)
	}
	if ns.Labels["app.kubernetes.io/part-of"] != "weir" {
		t.Errorf("namespace %s has labels %v, want app.kubernetes.io/part-of=weir", install.Namespace, ns.Labels)
	}
}

func TestInstalledCRDsServeFluxVersions(t *testing.T) {
	for name, crd := range installedCRDs(t) {
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not Established: %+v", name, crd.Status.Conditions)
		}
	}

	// What `kubectl api-resources` would list: the API server's discovery,
	// not the CRDs' specs.
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		groupVersion, kind, resource string
	}{
		{"source.toolkit.fluxcd.io/v1", "GitRepository", "gitrepositories"},
		{"source.toolkit.fluxcd.io/v1", "OCIRepository", "ocirepositories"},
		{"source.toolkit.fluxcd.io/v1", "HelmRepository", "helmrepositories"},
		{"source.toolkit.fluxcd.io/v1", "HelmChart", "helmcharts"},
		{"source.toolkit.fluxcd.io/v1", "Bucket", "buckets"},
		{"kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations"},
		{"helm.toolkit.fluxcd.io/v2", "HelmRelease", "helmreleases"},
		{"notification.toolkit.fluxcd.io/v1", "Receiver", "receivers"},
		{"notification.toolkit.fluxcd.io/v1beta3", "Alert", "alerts"},
		{"notification.toolkit.fluxcd.io/v1beta3", "Provider", "providers"},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			list, err := dc.ServerResourcesForGroupVersion(tc.groupVersion)
			if err != nil {
				t.Fatalf("the API server does not serve %s: %v", tc.groupVersion, err)
			}
			for _, r := range list.APIResources {
				if r.Name == tc.resource {
					if r.Kind != tc.kind || !r.Namespaced {
						t.Errorf("%s %s is a namespaced=%t %s", tc.groupVersion, tc.resource, r.Namespaced, r.Kind)
					}
					return
				}
			}
			t.Errorf("%s does not serve %s", tc.groupVersion, tc.resource)
		})
	}
}

func TestExportIsWhatInstallApplies(t *testing.T) {
	var buf bytes.Buffer
	if err := install.Export(&buf, nil); err != nil {
		t.Fatalf("exporting: %v", err)
	}

	reader := utilyaml.NewYAMLReader(bufio.NewReader(&buf))
	var crdNames []string
	namespaces := 0
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the YAML stream: %v", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("document is not YAML: %v\n%s", err, doc)
		}
		switch gvk := u.GroupVersionKind(); {
		case gvk.Group == "apiextensions.k8s.io" && gvk.Version == "v1" && gvk.Kind == "CustomResourceDefinition":
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
				t.Errorf("document %s is not a valid CRD: %v", u.GetName(), err)
			}
			crdNames = append(crdNames, crd.Name)
		case gvk.Group == "" && gvk.Version == "v1" && gvk.Kind == "Namespace" && u.GetName() == install.Namespace:
			namespaces++
		default:
			t.Errorf("unexpected document: %s %s", gvk, u.GetName())
		}
	}

	if namespaces != 1 {
		t.Errorf("the export holds %d %s namespaces, want 1", namespaces, install.Namespace)
	}
	// Every CRD on the cluster from Flux's groups is in the export, and no other.
	var onCluster apiextensionsv1.CustomResourceDefinitionList
	if err := env.Client.List(context.Background(), &onCluster); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range onCluster.Items {
		want = append(want, c.Name)
	}
	slices.Sort(want)
	slices.Sort(crdNames)
	if !slices.Equal(crdNames, want) {
		t.Errorf("the export has CRDs\n%v\nthe cluster has\n%v", crdNames, want)
	}
	for _, name := range []string{"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io", "helmreleases.helm.toolkit.fluxcd.io", "ocirepositories.source.toolkit.fluxcd.io"} {
		if !slices.Contains(crdNames, name) {
			t.Errorf("the export lacks %s", name)
		}
	}
}

// Objects written for Flux, in the versions Flux serves, are accepted as
// they are, and the schema still rejects what Flux would reject.
func TestFluxObjectsAreAccepted(t *testing.T) {
	ns := env.Namespace(t)
	objects := []string{`
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: podinfo}
spec:
  interval: 5m
  url: https://github.com/stefanprodan/podinfo
  ref: {branch: master}
  suspend: true
`, `
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: podinfo}
spec:
  interval: 5m
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  ref: {tag: latest}
  suspend: true
`, `
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps}
spec:
  interval: 10m
  path: ./apps
  prune: true
  dependsOn: [{name: infra}]
  sourceRef: {kind: GitRepository, name: podinfo}
  suspend: true
`, `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo}
spec:
  interval: 10m
  chartRef: {kind: OCIRepository, name: podinfo}
  values: {replicaCount: 2}
  suspend: true
`}
	for _, doc := range objects {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), u); err != nil {
			t.Errorf("creating %s %s: %v", u.GetAPIVersion(), u.GetKind(), err)
		}
	}

	invalid := &unstructured.Unstructured{}
	invalid.SetAPIVersion("kustomize.toolkit.fluxcd.io/v1")
	invalid.SetKind("Kustomization")
	invalid.SetNamespace(ns)
	invalid.SetName("no-source")
	invalid.Object["spec"] = map[string]any{"interval": "10m", "prune": true}
	err := env.Client.Create(context.Background(), invalid)
	if err == nil || !apierrors.IsInvalid(err) {
		t.Errorf("a Kustomization without sourceRef: err = %v, want Invalid", err)
	}
}
