package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/getsops/sops/v3/cmd/sops/formats"
)

// The bad-input suite of the render: one case per way a repository can be
// wrong. Each must fail with a render *Error of the right step whose
// message names the problem (the file, the field, the object) in the
// source's own paths, render no objects, and never show a secret value.

// secretValue is the value of every Secret the cases read: it must never
// appear in an error.
const secretValue = "S3CR3T-b4d1nput-value"

// badSource is one broken repository and what its render must say.
type badSource struct {
	name  string
	files map[string]string
	// links are symlinks to create: name -> target; "OUTSIDE" in a target
	// is replaced by a folder outside the source.
	links map[string]string
	spec  kustomizev1.KustomizationSpec // Path defaults to "./apps"
	// values defaults to badValues (a Secret "app-secrets" holding
	// secretValue, a ConfigMap "app-settings", the sops-age keys).
	values        Values
	noRemoteBases bool
	step          Step
	want          []string // fragments of the message
}

func TestBadSources(t *testing.T) {
	id, other := newIdentity(t), newIdentity(t)
	encrypted := encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id)
	forOther := encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", other)
	tampered := strings.Replace(encrypted, "password: ENC[", "password: hunter2 # ENC[", 1)
	encryptedEnv := encrypt(t, "PASSWORD=s3cr3t-password\n", formats.Dotenv, "", other)
	keys := keysFor(id).secrets["flux-system/sops-age"]
	values := fakeValues{
		configMaps: map[string]map[string]string{"flux-system/app-settings": {"REGION": "eu-1"}},
		secrets: map[string]map[string][]byte{
			"flux-system/app-secrets": {"TOKEN": []byte(secretValue), "BROKEN": []byte(secretValue + ": [unclosed")},
			"flux-system/sops-age":    keys,
			"flux-system/bad-keys":    {"x.agekey": []byte("AGE-SECRET-KEY-1" + secretValue + "\n")},
		},
	}
	ks := "apps/kustomization.yaml"
	cm := fmt.Sprintf(configMap, "a")
	withVars := func(from ...kustomizev1.SubstituteReference) kustomizev1.KustomizationSpec {
		return kustomizev1.KustomizationSpec{PostBuild: &kustomizev1.PostBuild{SubstituteFrom: from}}
	}
	secretVars := withVars(kustomizev1.SubstituteReference{Kind: "Secret", Name: "app-secrets"})
	usesVar := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uses\ndata:\n  value: " + v + "\n"
	}
	decrypt := kustomizev1.KustomizationSpec{Decryption: decryption}

	cases := []badSource{
		// kustomization.yaml that is not what kustomize reads.
		{name: "kustomization.yaml is not YAML", files: map[string]string{ks: "resources:\n- a.yaml\n  - b: [\n"},
			step: StepBuild, want: []string{ks}},
		{name: "kustomization.yaml indented with tabs", files: map[string]string{ks: "resources:\n\t- a.yaml\n"},
			step: StepBuild, want: []string{ks}},
		{name: "kustomization.yaml is a list", files: map[string]string{ks: "- a.yaml\n- b.yaml\n"},
			step: StepBuild, want: []string{ks}},
		{name: "kustomization.yaml resources is a string", files: map[string]string{ks: "resources: a.yaml\n", "apps/a.yaml": cm},
			step: StepBuild, want: []string{ks, "resources"}},
		{name: "kustomization.yaml resources holds a map", files: map[string]string{ks: "resources:\n- {path: a.yaml}\n"},
			step: StepBuild, want: []string{ks}},
		{name: "kustomization.yaml with a misspelt field", files: map[string]string{ks: "resourcez:\n- a.yaml\n", "apps/a.yaml": cm},
			step: StepBuild, want: []string{ks, "resourcez"}},
		{name: "kustomization.yaml with a duplicate key", files: map[string]string{ks: "resources: [a.yaml]\nresources: [a.yaml]\n", "apps/a.yaml": cm},
			step: StepBuild, want: []string{ks, "resources"}},
		{name: "two kustomization files", files: map[string]string{ks: "resources: [a.yaml]\n", "apps/kustomization.yml": "resources: [a.yaml]\n", "apps/a.yaml": cm},
			step: StepBuild, want: []string{"apps", "multiple kustomization files"}},
		{name: "a base's kustomization.yaml is broken", files: map[string]string{ks: "resources: [../base]\n", "base/kustomization.yaml": "resources: {\n"},
			step: StepBuild, want: []string{"base/kustomization.yaml"}},
		{name: "binary garbage as kustomization.yaml", files: map[string]string{ks: "\x00\x01\x02\xff\xfe"},
			step: StepBuild, want: []string{ks}},

		// Resources that are missing or malformed.
		{name: "a listed resource is missing", files: map[string]string{ks: "resources: [missing.yaml]\n"},
			step: StepBuild, want: []string{"missing.yaml"}},
		{name: "a listed resource is not YAML", files: map[string]string{ks: "resources: [a.yaml]\n", "apps/a.yaml": "kind: [\n"},
			step: StepBuild, want: []string{"accumulating resources from 'a.yaml'", "MalformedYAMLError"}},
		{name: "a generated kustomization meets a file that is not YAML", files: map[string]string{"apps/a.yaml": cm, "apps/sub/b.yaml": "metadata: {name: [\n"},
			step: StepBuild, want: []string{"apps/sub/b.yaml"}},
		{name: "an object without kind", files: map[string]string{"apps/a.yaml": "apiVersion: v1\nmetadata:\n  name: a\n"},
			step: StepBuild, want: []string{"apps/a.yaml"}},
		{name: "an object without name", files: map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\ndata:\n  k: v\n"},
			step: StepBuild, want: []string{"apps/a.yaml"}},
		{name: "an object without apiVersion", files: map[string]string{"apps/a.yaml": "kind: ConfigMap\nmetadata:\n  name: a\n"},
			step: StepBuild, want: []string{"an object in apps/a.yaml has no apiVersion"}},
		{name: "a document that is a plain string", files: map[string]string{ks: "resources: [a.yaml]\n", "apps/a.yaml": "just some words\n"},
			step: StepBuild, want: []string{"apps/a.yaml"}},
		{name: "metadata is a list", files: map[string]string{ks: "resources: [a.yaml]\n", "apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n- name: a\n"},
			step: StepBuild, want: []string{"apps/a.yaml"}},
		{name: "the same object twice", files: map[string]string{ks: "resources: [a.yaml, b.yaml]\n", "apps/a.yaml": cm, "apps/b.yaml": cm},
			step: StepBuild, want: []string{"ConfigMap", "a", "already registered"}},
		{name: "a YAML alias bomb", files: map[string]string{ks: "resources: [bomb.yaml]\n", "apps/bomb.yaml": aliasBomb()},
			step: StepPath, want: []string{"apps/bomb.yaml", "aliases expand"}},
		{name: "a YAML alias bomb in a file the kustomization does not list", files: map[string]string{ks: "resources: [a.yaml]\n", "apps/a.yaml": cm, "apps/bomb.yaml": aliasBomb()},
			step: StepPath, want: []string{"apps/bomb.yaml", "aliases expand"}},

		// Bases and references that loop or leave the source.
		{name: "two bases that include each other", files: map[string]string{ks: "resources: [../a]\n", "a/kustomization.yaml": "resources: [../b]\n", "b/kustomization.yaml": "resources: [../a]\n"},
			step: StepBuild, want: []string{"cycle"}},
		{name: "a kustomization that includes itself", files: map[string]string{ks: "resources: [.]\n"},
			step: StepBuild, want: []string{"cycle"}},
		{name: "a resource outside the source", files: map[string]string{ks: "resources: [../../../../etc/passwd]\n"},
			step: StepBuild, want: []string{"etc/passwd"}},
		{name: "a resource through a symlink out of the source", files: map[string]string{ks: "resources: [leak.yaml]\n"},
			links: map[string]string{"apps/leak.yaml": "OUTSIDE/cm.yaml"}, step: StepBuild, want: []string{"leak.yaml"}},
		{name: "a generated kustomization meets a symlink out", files: map[string]string{"apps/a.yaml": cm},
			links: map[string]string{"apps/leak.yaml": "OUTSIDE/cm.yaml"}, step: StepBuild, want: []string{"apps/leak.yaml"}},
		{name: "a configMapGenerator file out of the source", files: map[string]string{ks: "configMapGenerator:\n- name: x\n  files: [../../../../etc/hostname]\n"},
			step: StepBuild, want: []string{"etc/hostname"}},
		{name: "a configMapGenerator file that is missing", files: map[string]string{ks: "configMapGenerator:\n- name: x\n  files: [settings.env]\n"},
			step: StepBuild, want: []string{"settings.env"}},
		{name: "a patch file that is missing", files: map[string]string{ks: "resources: [a.yaml]\npatches:\n- path: patch.yaml\n", "apps/a.yaml": cm},
			step: StepBuild, want: []string{"patch.yaml"}},
		{name: "a patch that is not YAML", files: map[string]string{ks: "resources: [a.yaml]\npatches:\n- path: patch.yaml\n", "apps/a.yaml": cm, "apps/patch.yaml": "data: [\n"},
			step: StepBuild, want: []string{"patch.yaml"}},
		{name: "a remote base while remote bases are off", files: map[string]string{ks: "resources:\n- github.com/example/repo//deploy?ref=v1\n"},
			noRemoteBases: true, step: StepBuild, want: []string{ks, "github.com/example/repo//deploy?ref=v1", "remote bases are disabled"}},

		// spec fields that point nowhere.
		{name: "spec.path that does not exist", files: map[string]string{"apps/a.yaml": cm}, spec: kustomizev1.KustomizationSpec{Path: "./nope"},
			step: StepPath, want: []string{"path './nope' not found"}},
		{name: "spec.path out of the source", files: map[string]string{"apps/a.yaml": cm}, spec: kustomizev1.KustomizationSpec{Path: "../../etc"},
			step: StepPath, want: []string{"path '../../etc' is outside the source"}},
		{name: "spec.path is a file", files: map[string]string{"apps/a.yaml": cm}, spec: kustomizev1.KustomizationSpec{Path: "./apps/a.yaml"},
			step: StepPath, want: []string{"path './apps/a.yaml' is not a folder"}},
		{name: "spec.path through a symlink out", files: map[string]string{"apps/a.yaml": cm}, links: map[string]string{"out": "OUTSIDE"},
			spec: kustomizev1.KustomizationSpec{Path: "./out"}, step: StepPath, want: []string{"path './out' leads outside the source"}},
		{name: "spec.components names a missing component", files: map[string]string{"apps/a.yaml": cm},
			spec: kustomizev1.KustomizationSpec{Components: []string{"../components/nope"}}, step: StepBuild, want: []string{"components/nope"}},
		{name: "spec.patches holds a patch that is not YAML", files: map[string]string{"apps/a.yaml": cm},
			spec: kustomizev1.KustomizationSpec{Patches: []kustomize.Patch{{Patch: "data: [\n", Target: &kustomize.Selector{Kind: "ConfigMap"}}}},
			step: StepBuild, want: []string{"patch"}},

		// Sizes and counts.
		// A render reads the folders it reaches (TestSourceCopy checks
		// that a walk of folders whose symlinks fan out stops at the count).
		{name: "a source over the size a render reads", files: map[string]string{"apps/a.yaml": cm, "apps/dump.bin": sparse(120_000_000)},
			step: StepPath, want: []string{"larger than 100 MiB", "apps/dump.bin (114.4 MiB)", "spec.ignore"}},

		// SOPS.
		{name: "an encrypted Secret without spec.decryption", files: map[string]string{"apps/db.yaml": encrypted},
			step: StepDecrypt, want: []string{"Secret db in apps/db.yaml is SOPS encrypted", "spec.decryption is not set"}},
		{name: "an encrypted Secret for another key", files: map[string]string{"apps/db.yaml": forOther}, spec: decrypt,
			step: StepDecrypt, want: []string{"decrypting apps/db.yaml", "no age key in Secret 'sops-age' can decrypt it", other.Recipient().String()}},
		{name: "an encrypted Secret with a value added in plain text", files: map[string]string{"apps/db.yaml": tampered}, spec: decrypt,
			step: StepDecrypt, want: []string{"decrypting apps/db.yaml", "not in SOPS's ENC[...] form"}},
		{name: "an encrypted generator file for another key", files: map[string]string{ks: "secretGenerator:\n- name: db\n  envs: [db.env]\n", "apps/db.env": encryptedEnv}, spec: decrypt,
			step: StepDecrypt, want: []string{"decrypting apps/db.env", "no age key"}},
		{name: "the decryption Secret is missing", files: map[string]string{"apps/db.yaml": encrypted},
			spec: kustomizev1.KustomizationSpec{Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "nope"}}},
			step: StepDecrypt, want: []string{"decryption Secret 'nope' not found in namespace 'flux-system'"}},
		{name: "the decryption Secret holds a malformed key", files: map[string]string{"apps/db.yaml": encrypted},
			spec: kustomizev1.KustomizationSpec{Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "bad-keys"}}},
			step: StepDecrypt, want: []string{"decryption Secret 'bad-keys'", "entry 'x.agekey': line 1 is not an age secret key"}},
		{name: "spec.decryption without secretRef", files: map[string]string{"apps/db.yaml": encrypted},
			spec: kustomizev1.KustomizationSpec{Decryption: &kustomizev1.Decryption{Provider: "sops"}},
			step: StepDecrypt, want: []string{"spec.decryption.secretRef is not set"}},

		// Substitution.
		{name: "substituteFrom a Secret that is missing", files: map[string]string{"apps/a.yaml": cm},
			spec: withVars(kustomizev1.SubstituteReference{Kind: "Secret", Name: "nope"}),
			step: StepSubstitute, want: []string{"postBuild.substituteFrom: Secret 'nope' not found in namespace 'flux-system'", "optional: true"}},
		{name: "substituteFrom a ConfigMap that is missing", files: map[string]string{"apps/a.yaml": cm},
			spec: withVars(kustomizev1.SubstituteReference{Kind: "ConfigMap", Name: "nope"}),
			step: StepSubstitute, want: []string{"ConfigMap 'nope' not found"}},
		{name: "substituteFrom a kind that is not ConfigMap or Secret", files: map[string]string{"apps/a.yaml": cm},
			spec: withVars(kustomizev1.SubstituteReference{Kind: "Pod", Name: "app-secrets"}),
			step: StepSubstitute, want: []string{"kind 'Pod' of 'app-secrets' is not ConfigMap or Secret"}},
		{name: "a substitute variable with an invalid name", files: map[string]string{"apps/a.yaml": cm},
			spec: kustomizev1.KustomizationSpec{PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"MY-VAR": "x"}}},
			step: StepSubstitute, want: []string{"postBuild variable name 'MY-VAR' is invalid"}},
		{name: "an unterminated variable next to a Secret's", files: map[string]string{"apps/a.yaml": usesVar("${TOKEN} ${REGION")},
			spec: secretVars, step: StepSubstitute, want: []string{"ConfigMap uses"}},
		{name: "a Secret's value that breaks the YAML", files: map[string]string{"apps/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uses\ndata:\n  value: ${BROKEN}\n"},
			spec: secretVars, step: StepSubstitute, want: []string{"ConfigMap uses", "not valid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, values)
		})
	}
}

// run renders the case and checks what the suite promises.
func (tc badSource) run(t *testing.T, defaults Values) {
	t.Helper()
	outside := writeTree(t, map[string]string{"cm.yaml": fmt.Sprintf(configMap, "outside")})
	files := map[string]string{}
	var sparseFiles []string
	for name, content := range tc.files {
		if _, ok := sparseSize(content); ok {
			sparseFiles = append(sparseFiles, name)
			content = ""
		}
		files[name] = content
	}
	root := writeTree(t, files)
	for _, name := range sparseFiles {
		n, _ := sparseSize(tc.files[name])
		if err := os.Truncate(filepath.Join(root, filepath.FromSlash(name)), n); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range tc.links {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(strings.ReplaceAll(target, "OUTSIDE", outside), p); err != nil {
			t.Fatal(err)
		}
	}
	if tc.spec.Path == "" {
		tc.spec.Path = "./apps"
	}
	values := tc.values
	if values == nil {
		values = defaults
	}
	objects, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", Spec: tc.spec, Values: values, NoRemoteBases: tc.noRemoteBases,
	})
	wantError(t, err, tc.step, tc.want...)
	if objects != nil {
		t.Errorf("a failed render returned objects: %v", ids(objects))
	}
	for _, s := range []string{secretValue, "s3cr3t-password", "top-secret-token", "hunter2", outside, root} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error shows %q: %s", s, err)
		}
	}
}

// sparse stands for a file of n zero bytes that takes no disk space.
func sparse(n int64) string { return fmt.Sprintf("\x00sparse:%d", n) }

func sparseSize(content string) (int64, bool) {
	var n int64
	if _, err := fmt.Sscanf(content, "\x00sparse:%d", &n); err != nil || !strings.HasPrefix(content, "\x00sparse:") {
		return 0, false
	}
	return n, true
}

// fanOut links folders apps/0 .. apps/n-1 so that each holds two symlinks
// to the next: 2^n paths without a loop.
func fanOut(n int) map[string]string {
	links := map[string]string{}
	for i := 0; i < n-1; i++ {
		links[fmt.Sprintf("apps/%d/a", i)] = fmt.Sprintf("../%d", i+1)
		links[fmt.Sprintf("apps/%d/b", i)] = fmt.Sprintf("../%d", i+1)
	}
	return links
}

// aliasBomb is a YAML document whose aliases expand to 10^9 strings.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\nx0: &x0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*x%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// damageMAC changes one character of a SOPS document's MAC.
func damageMAC(doc string) string {
	i := strings.Index(doc, "mac: ENC[AES256_GCM,data:")
	if i < 0 {
		return doc
	}
	i += len("mac: ENC[AES256_GCM,data:")
	c := byte('A')
	if doc[i] == 'A' {
		c = 'B'
	}
	return doc[:i] + string(c) + doc[i+1:]
}
