package badinput_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/testenv"
)

// The secret values of the suite; each starts with secretMark.
const (
	tokenValue   = secretMark + "-token-4u7x"
	brokenValue  = secretMark + "-broken-4u7x: [unclosed"
	labelValue   = secretMark + " not a label 4u7x"
	sopsValue    = secretMark + "-sops-4u7x"
	urlPassword  = secretMark + "-urlpass-4u7x"
	helmLabel    = secretMark + " helm label 4u7x"
	bigFileBytes = 120_000_000
)

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  key: value\n"

// clusterRepo is the repository the Kustomization cases read: one folder
// per way a repository can be broken. sopsForKey and sopsForOther are a
// Secret encrypted for the suite's age key and for another one.
func clusterRepo(sopsForKey, sopsForOther string) map[string]string {
	return map[string]string{
		"good/cm.yaml": fmt.Sprintf(configMap, "guarded"),

		"broken-yaml/kustomization.yaml":      "resources:\n- cm.yaml\n  - b: [\n",
		"broken-yaml/cm.yaml":                 fmt.Sprintf(configMap, "broken-yaml-cm"),
		"broken-base/kustomization.yaml":      "resources: [../broken-base-lib]\n",
		"broken-base-lib/kustomization.yaml":  "resources: {\n",
		"misspelt-field/kustomization.yaml":   "resourcez: [cm.yaml]\n",
		"misspelt-field/cm.yaml":              fmt.Sprintf(configMap, "misspelt-cm"),
		"missing-resource/kustomization.yaml": "resources: [cm.yaml, nope.yaml]\n",
		"missing-resource/cm.yaml":            fmt.Sprintf(configMap, "missing-resource-cm"),
		"base-cycle/kustomization.yaml":       "resources: [../base-cycle-b]\n",
		"base-cycle-b/kustomization.yaml":     "resources: [../base-cycle]\n",
		"duplicate/a.yaml":                    fmt.Sprintf(configMap, "dup"),
		"duplicate/b.yaml":                    fmt.Sprintf(configMap, "dup"),
		"no-kind/cm.yaml":                     "apiVersion: v1\nmetadata:\n  name: no-kind\n",

		"unknown-kind/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gadget\nspec: {}\n",
		"unknown-kind/cm.yaml":     fmt.Sprintf(configMap, "unknown-kind-cm"),
		"long-name/cm.yaml":        fmt.Sprintf(configMap, strings.Repeat("a", 300)),
		"long-name/ok.yaml":        fmt.Sprintf(configMap, "long-name-ok"),
		"bad-name/cm.yaml":         fmt.Sprintf(configMap, "Bad_Name"),
		"wrong-type/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wrong-type\nspec:\n  replicas: two\n" +
			"  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec: {containers: [{name: x, image: x}]}\n",
		"wrong-type/cm.yaml": fmt.Sprintf(configMap, "wrong-type-cm"),

		"sops-no-decryption/db.yaml": sopsForKey,
		"sops-no-decryption/cm.yaml": fmt.Sprintf(configMap, "sops-no-decryption-cm"),
		"sops-wrong-key/db.yaml":     sopsForOther,
		"sops-wrong-key/cm.yaml":     fmt.Sprintf(configMap, "sops-wrong-key-cm"),

		"substitute-broken/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: substitute-broken\ndata:\n  value: ${BROKEN}\n",
		"substitute-label/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: substitute-label\n  labels:\n    team: ${LABEL}\ndata:\n  token: ${TOKEN}\n",
		"substitute-label/ok.yaml":  fmt.Sprintf(configMap, "substitute-label-ok"),
	}
}

func TestBadObjects(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()

	// Secrets the cases read.
	id, other := testenv.AgeIdentity(t), testenv.AgeIdentity(t)
	createSecret(t, ns, "vars", map[string]string{"TOKEN": tokenValue, "BROKEN": brokenValue, "LABEL": labelValue})
	createSecret(t, ns, "sops-age", map[string]string{"age.agekey": id.String()})
	createSecret(t, ns, "helm-values", map[string]string{"values.yaml": "labels:\n  team: " + helmLabel + "\n"})

	// A Git server with the broken repository, and one holding a 120 MB
	// file.
	git := testenv.NewGitServer(t, "", "")
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + sopsValue + "\n"
	git.Repo(t, "cluster").Commit("main", clusterRepo(testenv.EncryptYAML(t, secret, id), testenv.EncryptYAML(t, secret, other)),
		"a repository broken in every way")
	git.Repo(t, "big").Commit("main", map[string]string{
		"apps/cm.yaml":  fmt.Sprintf(configMap, "big-cm"),
		"data/dump.bin": string(make([]byte, bigFileBytes)),
	}, "a database dump, committed by mistake")

	// An OCI registry with a chart, for the HelmReleases.
	registry := testenv.NewRegistry(t, "", "")
	registry.PushChart(t, "charts/demo", "1.0.0", testenv.WriteChart(t, "demo", "1.0.0", map[string]string{
		"values.yaml": "data:\n  greeting: hello\nfailRender: false\nlabels: {}\n",
		"templates/configmap.yaml": "{{- if .Values.failRender }}{{ fail \"failRender is set\" }}{{- end }}\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n" +
			"  {{- with .Values.labels }}\n  labels: {{ toJson . }}\n  {{- end }}\n" +
			"data:\n{{ toYaml .Values.data | indent 2 }}\n",
	}))

	sources := []client.Object{
		gitRepository("cluster", git.HTTPURL("cluster"), nil),
		ociRepository("chart", registry.URL("charts/demo"), func(o *sourcev1.OCIRepository) {
			o.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}
		}),
	}
	for _, s := range sources {
		s.SetNamespace(ns)
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A Kustomization that applied good/ before its path was broken: the
	// failed reconcile must prune nothing.
	guard := kustomization("guard", "./good", nil)
	guard.SetNamespace(ns)
	inNamespace(guard, ns)
	if err := env.Client.Create(ctx, guard); err != nil {
		t.Fatal(err)
	}
	waitConfigMap(t, ns, "guarded")

	longName := strings.Repeat("k", 254)
	cases := []objectCase{
		// Kustomizations of broken folders.
		{name: "kustomization.yaml that is not YAML", obj: kustomization("broken-yaml", "./broken-yaml", nil),
			reason: "BuildFailed", want: []string{"broken-yaml/kustomization.yaml"}, absent: []string{"ConfigMap/broken-yaml-cm"}},
		{name: "a base whose kustomization.yaml is not YAML", obj: kustomization("broken-base", "./broken-base", nil),
			reason: "BuildFailed", want: []string{"broken-base-lib/kustomization.yaml"}},
		{name: "a misspelt kustomization field", obj: kustomization("misspelt-field", "./misspelt-field", nil),
			reason: "BuildFailed", want: []string{"misspelt-field/kustomization.yaml", "resourcez"}, absent: []string{"ConfigMap/misspelt-cm"}},
		{name: "a resource that is missing", obj: kustomization("missing-resource", "./missing-resource", nil),
			reason: "BuildFailed", want: []string{"nope.yaml"}, absent: []string{"ConfigMap/missing-resource-cm"}},
		{name: "bases that include each other", obj: kustomization("base-cycle", "./base-cycle", nil),
			reason: "BuildFailed", want: []string{"cycle"}},
		{name: "the same object twice", obj: kustomization("duplicate", "./duplicate", nil),
			reason: "BuildFailed", want: []string{"dup"}, absent: []string{"ConfigMap/dup"}},
		{name: "an object without kind", obj: kustomization("no-kind", "./no-kind", nil),
			reason: "BuildFailed", want: []string{"no-kind/cm.yaml"}},
		{name: "a kind the cluster does not know", obj: kustomization("unknown-kind", "./unknown-kind", nil),
			want: []string{"Widget", "gadget"}, absent: []string{"ConfigMap/unknown-kind-cm"}},
		{name: "a name longer than 253 characters", obj: kustomization("long-name", "./long-name", nil),
			want: []string{"ConfigMap", strings.Repeat("a", 40), "253"}, absent: []string{"ConfigMap/long-name-ok"}},
		{name: "a name that is not a DNS name", obj: kustomization("bad-name", "./bad-name", nil),
			want: []string{"Bad_Name"}},
		{name: "a field of the wrong type", obj: kustomization("wrong-type", "./wrong-type", nil),
			want: []string{"Deployment", "wrong-type", "replicas"}, absent: []string{"ConfigMap/wrong-type-cm", "Deployment/wrong-type"}},
		{name: "an encrypted Secret without spec.decryption", obj: kustomization("sops-no-decryption", "./sops-no-decryption", nil),
			reason: "BuildFailed", want: []string{"/db in sops-no-decryption/db.yaml is SOPS encrypted", "spec.decryption is not set"},
			absent: []string{"Secret/db", "ConfigMap/sops-no-decryption-cm"}},
		{name: "an encrypted Secret for another key", obj: kustomization("sops-wrong-key", "./sops-wrong-key", func(k *kustomizev1.Kustomization) {
			k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}
		}), want: []string{"decrypting sops-wrong-key/db.yaml", "no age key in Secret 'sops-age' can decrypt it"},
			absent: []string{"ConfigMap/sops-wrong-key-cm"}},
		{name: "a substituteFrom Secret value that breaks the YAML", obj: kustomization("substitute-broken", "./substitute-broken", substituteFrom("vars")),
			want: []string{"substituting variables in ConfigMap", "substitute-broken", "not valid YAML"}, absent: []string{"ConfigMap/substitute-broken"}},
		{name: "a substituteFrom Secret value the API server refuses", obj: kustomization("substitute-label", "./substitute-label", substituteFrom("vars")),
			want: []string{"substitute-label", "labels"}, absent: []string{"ConfigMap/substitute-label", "ConfigMap/substitute-label-ok"}},

		// Kustomizations whose spec points nowhere.
		{name: "a source that does not exist", obj: kustomization("no-source", "./good", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Name = "nope" }),
			reason: meta.ArtifactFailedReason, want: []string{"nope", "not found"}},
		{name: "an ExternalArtifact source that does not exist", obj: kustomization("external-source", "./good", func(k *kustomizev1.Kustomization) {
			k.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: "ExternalArtifact", Name: "nope"}
		}), reason: meta.ArtifactFailedReason, want: []string{"ExternalArtifact", "nope", "not found"}},
		{name: "spec.path that does not exist", obj: kustomization("no-path", "./nope", nil),
			reason: "BuildFailed", want: []string{"path './nope' not found"}},
		{name: "spec.path out of the source", obj: kustomization("path-out", "../../etc", nil),
			reason: "BuildFailed", want: []string{"path '../../etc' is outside the source"}},
		{name: "a dependency that does not exist", obj: kustomization("depends-missing", "./good", dependsOn("nope")),
			reason: meta.DependencyNotReadyReason, want: []string{"dependency", "nope", "not found"}},
		{name: "a dependency cycle (first)", obj: kustomization("cycle-a", "./good", dependsOn("cycle-b")),
			stalled: true, want: []string{"dependency cycle", "cycle-a", "cycle-b"}},
		{name: "a dependency cycle (second)", obj: kustomization("cycle-b", "./good", dependsOn("cycle-a")),
			stalled: true, want: []string{"dependency cycle", "cycle-a", "cycle-b"}},
		{name: "a decryption Secret that does not exist", obj: kustomization("decryption-missing", "./good", func(k *kustomizev1.Kustomization) {
			k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "nope"}}
		}), want: []string{"decryption Secret 'nope' not found"}},
		{name: "a substituteFrom Secret that does not exist", obj: kustomization("substitute-missing", "./good", substituteFrom("nope")),
			want: []string{"Secret 'nope' not found", "optional: true"}},
		{name: "a kubeConfig Secret that does not exist", obj: kustomization("kubeconfig", "./good", func(k *kustomizev1.Kustomization) {
			k.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "remote"}}
		}), reason: meta.ReconciliationFailedReason, want: []string{"KubeConfig secret", "remote", "not found"}},
		{name: "a health check expression that does not compile", obj: kustomization("bad-cel", "./good", func(k *kustomizev1.Kustomization) {
			k.Spec.Wait = true
			k.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{APIVersion: "v1", Kind: "ConfigMap",
				HealthCheckExpressions: kustomize.HealthCheckExpressions{Current: "self.data.(("}}}
		}), stalled: true, want: []string{"healthCheckExprs[0]"}},
		{name: "a service account that does not exist", obj: kustomization("no-sa", "./good", func(k *kustomizev1.Kustomization) { k.Spec.ServiceAccountName = "nope" }),
			want: []string{"nope"}},
		{name: "a target namespace that does not exist", obj: kustomization("no-namespace", "./good", func(k *kustomizev1.Kustomization) { k.Spec.TargetNamespace = "does-not-exist" }),
			want: []string{"does-not-exist"}},
		{name: "a Kustomization of a repository holding a 120 MB file", obj: kustomization("on-big", "./apps", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Name = "big" }),
			reason: meta.ArtifactFailedReason, want: []string{"big"}},

		// Kustomizations the CRD refuses.
		{name: "a name longer than 253 characters (Kustomization)", obj: kustomization(longName, "./good", nil),
			refused: []string{"253"}},
		{name: "an interval that is a number", obj: raw(kustomizev1.GroupVersion.String(), "Kustomization", "interval-number", map[string]any{
			"interval": 5, "prune": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": "cluster"}}),
			refused: []string{"spec.interval", "string"}},
		{name: "prune as a string", obj: raw(kustomizev1.GroupVersion.String(), "Kustomization", "prune-string", map[string]any{
			"interval": "1h", "prune": "yes", "sourceRef": map[string]any{"kind": "GitRepository", "name": "cluster"}}),
			refused: []string{"spec.prune", "boolean"}},
		{name: "dependsOn as a string", obj: raw(kustomizev1.GroupVersion.String(), "Kustomization", "depends-string", map[string]any{
			"interval": "1h", "prune": true, "dependsOn": "guard", "sourceRef": map[string]any{"kind": "GitRepository", "name": "cluster"}}),
			refused: []string{"spec.dependsOn", "array"}},
		{name: "no sourceRef", obj: raw(kustomizev1.GroupVersion.String(), "Kustomization", "no-source-ref", map[string]any{
			"interval": "1h", "prune": true}),
			refused: []string{"spec.sourceRef", "Required"}},
		{name: "a source kind the CRD does not know", obj: kustomization("source-kind", "./good", func(k *kustomizev1.Kustomization) { k.Spec.SourceRef.Kind = "Pod" }),
			refused: []string{"spec.sourceRef.kind"}},

		// GitRepositories.
		{name: "a URL without a host", obj: gitRepository("no-host", "https:///no-host.git", nil),
			stalled: true, reason: sourcev1.URLInvalidReason},
		{name: "a password in the URL", obj: gitRepository("url-password", "http://weir:"+urlPassword+"@127.0.0.1:1/repo.git", nil),
			want: []string{"127.0.0.1:1"}},
		{name: "a secretRef that does not exist", obj: gitRepository("no-secret", git.HTTPURL("cluster"), func(g *sourcev1.GitRepository) {
			g.Spec.SecretRef = &meta.LocalObjectReference{Name: "nope"}
		}), want: []string{"nope"}},
		{name: "a branch that does not exist", obj: gitRepository("no-branch", git.HTTPURL("cluster"), func(g *sourcev1.GitRepository) {
			g.Spec.Reference = &sourcev1.GitRepositoryRef{Branch: "nope"}
		}), want: []string{"unable to resolve branch 'nope'"}},
		{name: "a semver range that does not parse", obj: gitRepository("bad-semver", git.HTTPURL("cluster"), func(g *sourcev1.GitRepository) {
			g.Spec.Reference = &sourcev1.GitRepositoryRef{SemVer: "not a range"}
		}), want: []string{"semver constraint 'not a range' is invalid"}},
		{name: "a commit that is not a full SHA-1", obj: gitRepository("short-commit", git.HTTPURL("cluster"), func(g *sourcev1.GitRepository) {
			g.Spec.Reference = &sourcev1.GitRepositoryRef{Commit: "abc123"}
		}), want: []string{"abc123"}},
		{name: "an include that does not exist", obj: gitRepository("include-missing", git.HTTPURL("cluster"), includes("nope")),
			want: []string{"nope"}},
		{name: "includes that form a cycle (first)", obj: gitRepository("include-a", git.HTTPURL("cluster"), includes("include-b")),
			stalled: true, want: []string{"cycle", "include-a", "include-b"}, fixedIn: "sources"},
		{name: "includes that form a cycle (second)", obj: gitRepository("include-b", git.HTTPURL("cluster"), includes("include-a")),
			stalled: true, want: []string{"cycle", "include-a", "include-b"}, fixedIn: "sources"},
		// A verification whose keys cannot be read fails, saying which
		// Secret, and the commit is never served as if verified.
		{name: "verification with a Secret that does not exist", obj: gitRepository("verify-missing", git.HTTPURL("cluster"), func(g *sourcev1.GitRepository) {
			g.Spec.Verification = &sourcev1.GitRepositoryVerification{Mode: sourcev1.ModeGitHEAD, SecretRef: meta.LocalObjectReference{Name: "nope"}}
		}), reason: "VerificationError", want: []string{"public keys secret error", "nope", "not found"}},
		{name: "a repository holding a 120 MB file", obj: gitRepository("big", git.HTTPURL("big"), nil),
			want: []string{"data/dump.bin (114.4 MiB)", "over the 100 MiB", "spec.ignore"}},
		{name: "an interval that is a number (GitRepository)", obj: raw(sourcev1.GroupVersion.String(), "GitRepository", "git-interval-number", map[string]any{
			"interval": 60, "url": git.HTTPURL("cluster")}),
			refused: []string{"spec.interval", "string"}},
		{name: "a URL that is not one", obj: gitRepository("not-a-url", "not a url", nil),
			refused: []string{"spec.url"}},

		// OCIRepositories.
		{name: "a URL that is not oci://", obj: ociRepository("not-oci", "https://example.invalid/charts/demo", nil),
			refused: []string{"spec.url", "oci://"}},
		{name: "a tag that does not exist", obj: ociRepository("no-tag", registry.URL("charts/demo"), func(o *sourcev1.OCIRepository) {
			o.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: "9.9.9"}
		}), want: []string{"9.9.9"}},
		{name: "a layer media type the artifact lacks", obj: ociRepository("no-layer", registry.URL("charts/demo"), func(o *sourcev1.OCIRepository) {
			o.Spec.LayerSelector = &sourcev1.OCILayerSelector{MediaType: "application/x-nope"}
		}), want: []string{"application/x-nope"}},

		// HelmReleases.
		{name: "a chartRef that does not exist", obj: helmRelease("no-chart", func(h *helmv2.HelmRelease) { h.Spec.ChartRef.Name = "nope" }),
			want: []string{"nope"}},
		{name: "a valuesFrom Secret that does not exist", obj: helmRelease("values-missing", func(h *helmv2.HelmRelease) {
			h.Spec.ValuesFrom = []helmv2.ValuesReference{{Kind: "Secret", Name: "nope"}}
		}), want: []string{"nope"}},
		{name: "values that make the chart fail", obj: helmRelease("fail-render", func(h *helmv2.HelmRelease) {
			h.Spec.Values = &apiextensionsv1.JSON{Raw: mustJSON(t, map[string]any{"failRender": true})}
		}), want: []string{"failRender is set"}},
		{name: "a valuesFrom Secret value the API server refuses", obj: helmRelease("values-refused", func(h *helmv2.HelmRelease) {
			h.Spec.ValuesFrom = []helmv2.ValuesReference{{Kind: "Secret", Name: "helm-values"}}
		}), want: []string{"values-refused"}, absent: []string{"ConfigMap/values-refused"}, fixedIn: "helmmask"},
		{name: "a targetNamespace that does not exist", obj: helmRelease("no-target-ns", func(h *helmv2.HelmRelease) {
			h.Spec.TargetNamespace = "nope-" + ns
		}), want: []string{`namespaces "nope-` + ns + `" not found`}},
		{name: "a release name longer than Helm allows", obj: helmRelease("long-release", func(h *helmv2.HelmRelease) {
			h.Spec.ReleaseName = strings.Repeat("r", 54)
		}), refused: []string{"spec.releaseName", "53"}},
	}
	runCases(t, ns, cases, 2*time.Minute)

	t.Run("a failed reconcile prunes nothing", func(t *testing.T) {
		setPath(t, guard, "./broken-yaml")
		got := waitCondition(t, guard, "BuildFailed")
		if !strings.Contains(got, "broken-yaml/kustomization.yaml") {
			t.Errorf("Ready says %q", got)
		}
		if !configMapExists(t, ns, "guarded") {
			t.Error("the ConfigMap the Kustomization applied before was pruned by a failed reconcile")
		}
	})
	t.Run("spec.ignore lets the repository with a 120 MB file through", func(t *testing.T) {
		big := &sourcev1.GitRepository{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "big"}, big); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(big.DeepCopy())
		ignore := "/data/\n"
		big.Spec.Ignore = &ignore
		if err := env.Client.Patch(ctx, big, patch); err != nil {
			t.Fatal(err)
		}
		waitConfigMap(t, ns, "big-cm")
	})
	checkNoSecretInEvents(t, ns)

	// Last: a duration the controllers cannot decode, once stored, makes
	// every list of its kind fail, which would blind the controllers to
	// the cases above.
	overflows := []objectCase{
		{name: "an interval that overflows", obj: kustomization("interval-overflow", "./good", func(k *kustomizev1.Kustomization) {
			k.Spec.Interval = metav1.Duration{Duration: 0}
		}), refused: []string{"spec.interval"}, fixedIn: "sources"},
		{name: "a timeout that overflows", obj: gitRepository("timeout-overflow", git.HTTPURL("cluster"), nil),
			refused: []string{"spec.timeout"}, fixedIn: "sources"},
		{name: "an interval that overflows (HelmRelease)", obj: helmRelease("helm-interval-overflow", nil),
			refused: []string{"spec.interval"}, fixedIn: "sources"},
	}
	setOverflow(overflows)
	runCases(t, ns, overflows, 10*time.Second)
	for _, c := range overflows {
		_ = env.Client.Delete(ctx, c.obj)
	}
}

// setOverflow writes the overflowing durations that the typed builders
// cannot hold: the cases are created from JSON with "99999999999h".
func setOverflow(cases []objectCase) {
	for i, c := range cases {
		var field string
		switch c.obj.GetName() {
		case "interval-overflow", "helm-interval-overflow":
			field = "interval"
		case "timeout-overflow":
			field = "timeout"
		default:
			continue
		}
		u, err := toUnstructured(c.obj)
		if err != nil {
			panic(err)
		}
		spec := u.Object["spec"].(map[string]any)
		spec[field] = "99999999999h"
		cases[i].obj = u
	}
}

func createSecret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func kustomization(name, path string, mutate func(*kustomizev1.Kustomization)) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: time.Hour},
			Path:      path,
			Prune:     true,
			Timeout:   &metav1.Duration{Duration: 30 * time.Second},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "cluster"},
		},
	}
	if mutate != nil {
		mutate(k)
	}
	return k
}

func substituteFrom(name string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: name}}}
	}
}

func dependsOn(name string) func(*kustomizev1.Kustomization) {
	return func(k *kustomizev1.Kustomization) {
		k.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: name}}
	}
}

func gitRepository(name, url string, mutate func(*sourcev1.GitRepository)) *sourcev1.GitRepository {
	g := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: time.Hour},
			Timeout:   &metav1.Duration{Duration: 20 * time.Second},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if mutate != nil {
		mutate(g)
	}
	return g
}

func includes(name string) func(*sourcev1.GitRepository) {
	return func(g *sourcev1.GitRepository) {
		g.Spec.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: meta.LocalObjectReference{Name: name}, ToPath: "vendor"}}
	}
}

func ociRepository(name, url string, mutate func(*sourcev1.OCIRepository)) *sourcev1.OCIRepository {
	o := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: time.Hour},
			Insecure:  true,
			Reference: &sourcev1.OCIRepositoryRef{Tag: "1.0.0"},
		},
	}
	if mutate != nil {
		mutate(o)
	}
	return o
}

func helmRelease(name string, mutate func(*helmv2.HelmRelease)) *helmv2.HelmRelease {
	h := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 30 * time.Second},
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "chart"},
		},
	}
	if mutate != nil {
		mutate(h)
	}
	return h
}

// toUnstructured converts a typed object, keeping its kind.
func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, kube.Scheme())
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// setPath changes a Kustomization's spec.path.
func setPath(t *testing.T, k *kustomizev1.Kustomization, path string) {
	t.Helper()
	got := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(k), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Path = path
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

// waitCondition waits until the Kustomization's current generation is
// Ready=False with reason, and returns the message.
func waitCondition(t *testing.T, k *kustomizev1.Kustomization, reason string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := &kustomizev1.Kustomization{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(k), got); err == nil {
			c := find(got.Status.Conditions, meta.ReadyCondition)
			if c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason && got.Status.ObservedGeneration == got.Generation {
				return c.Message
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never turned Ready=False %s: %s", k.Name, reason, describe(got.Status.Conditions))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitConfigMap waits until the ConfigMap exists.
func waitConfigMap(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !configMapExists(t, ns, name) {
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/%s was never applied", ns, name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func configMapExists(t *testing.T, ns, name string) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}
