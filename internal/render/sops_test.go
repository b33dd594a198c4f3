package render

import (
	"context"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/pgp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// newIdentity makes an age key pair for a test.
func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// encrypt encrypts a document with SOPS for the age recipients, as
// `sops --encrypt --age ... --encrypted-regex ...` does.
func encrypt(t testing.TB, plain string, format formats.Format, encryptedRegex string, recipients ...*age.X25519Identity) string {
	t.Helper()
	return encryptFor(t, plain, format, encryptedRegex, nil, recipients...)
}

// encryptFor encrypts like encrypt, then, when groups is not nil, writes
// those key groups in the metadata instead of the recipients'.
func encryptFor(t testing.TB, plain string, format formats.Format, encryptedRegex string, groups []sops.KeyGroup, recipients ...*age.X25519Identity) string {
	t.Helper()
	store := common.StoreForFormat(format, config.NewStoresConfig())
	branches, err := store.LoadPlainFile([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	var group sops.KeyGroup
	for _, r := range recipients {
		mk, err := sopsage.MasterKeyFromRecipient(r.Recipient().String())
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, keys.MasterKey(mk))
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:      []sops.KeyGroup{group},
		EncryptedRegex: encryptedRegex,
		Version:        "3.13.3",
	}}
	dataKey, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyservice.NewLocalClient()})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := common.EncryptTree(common.EncryptTreeOpts{DataKey: dataKey, Tree: &tree, Cipher: aes.NewCipher()}); err != nil {
		t.Fatal(err)
	}
	if groups != nil {
		tree.Metadata.KeyGroups = groups
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

const dbSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: s3cr3t-password
data:
  token: ` + "dG9wLXNlY3JldC10b2tlbg==" + ` # top-secret-token
`

// decryption is the spec of a Kustomization that decrypts with the
// sops-age Secret.
var decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}

// keysFor is a fake holding the sops-age Secret with the identities.
func keysFor(ids ...*age.X25519Identity) fakeValues {
	data := map[string][]byte{"README.txt": []byte("not a key")}
	for i, id := range ids {
		data[fmt.Sprintf("key%d.agekey", i)] = []byte("# created: today\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")
	}
	return fakeValues{secrets: map[string]map[string][]byte{"flux-system/sops-age": data}}
}

func TestSOPSDecryptsSecrets(t *testing.T) {
	id, other := newIdentity(t), newIdentity(t)
	root := writeTree(t, map[string]string{
		"apps/db.sops.yaml": encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id),
		"apps/cm.yaml":      fmt.Sprintf(configMap, "plain"),
		"apps/nested.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: nested
data:
  config.yaml: ` + base64.StdEncoding.EncodeToString([]byte(encrypt(t, "user: admin\npass: nested-secret\n", formats.Yaml, "", id))) + "\n",
	})
	objects, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", Values: keysFor(other, id),
		Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: decryption},
	})
	if err != nil {
		t.Fatal(err)
	}
	db := find(t, objects, "Secret", "db")
	if got := str(db, "stringData", "password"); got != "s3cr3t-password" {
		t.Errorf("stringData.password %q", got)
	}
	if got := str(db, "data", "token"); got != "dG9wLXNlY3JldC10b2tlbg==" {
		t.Errorf("data.token %q", got)
	}
	if _, found := db.Object["sops"]; found {
		t.Error("the sops metadata is still there")
	}
	if a := db.GetAnnotations(); len(a) != 0 {
		t.Errorf("annotations left by the render: %v", a)
	}
	nested, _ := base64.StdEncoding.DecodeString(str(find(t, objects, "Secret", "nested"), "data", "config.yaml"))
	if !strings.Contains(string(nested), "pass: nested-secret") || strings.Contains(string(nested), "sops") {
		t.Errorf("a Secret value encrypted on its own: %q", nested)
	}
	find(t, objects, "ConfigMap", "plain")
}

func TestSOPSDecryptsGeneratorSources(t *testing.T) {
	id := newIdentity(t)
	root := writeTree(t, map[string]string{
		"apps/kustomization.yaml": `resources: [secret.yaml]
secretGenerator:
- name: generated
  envs: [creds.env]
  files:
  - settings.json
  - renamed.yaml=source.yaml
  - token
generatorOptions:
  disableNameSuffixHash: true
patches:
- path: patch.yaml
`,
		"apps/creds.env":       encrypt(t, "USER=admin\nPASSWORD=env-secret\n", formats.Dotenv, "", id),
		"apps/settings.json":   encrypt(t, `{"apiKey": "json-secret"}`, formats.Json, "", id),
		"apps/source.yaml":     encrypt(t, "key: yaml-secret\n", formats.Yaml, "", id),
		"apps/token":           encrypt(t, `{"data": "binary-secret"}`, formats.Binary, "", id),
		"apps/secret.yaml":     "apiVersion: v1\nkind: Secret\nmetadata:\n  name: patched\nstringData:\n  a: b\n",
		"apps/patch.yaml":      encrypt(t, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: patched\nstringData:\n  a: patch-secret\n", formats.Yaml, "^stringData$", id),
		"apps/unused.sops.env": encrypt(t, "X=y\n", formats.Dotenv, "", newIdentity(t)),
	})
	objects, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", Values: keysFor(id),
		Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: decryption},
	})
	if err != nil {
		t.Fatal(err)
	}
	gen := find(t, objects, "Secret", "generated")
	for key, want := range map[string]string{
		"PASSWORD":      "env-secret",
		"settings.json": "json-secret",
		"renamed.yaml":  "key: yaml-secret",
		"token":         "binary-secret",
	} {
		v, _ := base64.StdEncoding.DecodeString(str(gen, "data", key))
		if !strings.Contains(string(v), want) || strings.Contains(string(v), "ENC[") {
			t.Errorf("%s = %q, want it to hold %q", key, v, want)
		}
	}
	if got := str(find(t, objects, "Secret", "patched"), "stringData", "a"); got != "patch-secret" {
		t.Errorf("encrypted patch: stringData.a = %q", got)
	}
	if tree := listTree(t, root); len(tree) != 8 {
		t.Errorf("the source changed: %v", tree)
	}
	for _, f := range []string{"creds.env", "settings.json"} {
		data := readFile(t, root, "apps/"+f)
		if !strings.Contains(data, "ENC[") {
			t.Errorf("%s was decrypted on disk", f)
		}
	}
}

func TestSOPSWrongKey(t *testing.T) {
	id, wrong := newIdentity(t), newIdentity(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		file  string
	}{{
		name:  "a Secret manifest",
		files: map[string]string{"apps/secrets/db.sops.yaml": encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id)},
		file:  "apps/secrets/db.sops.yaml",
	}, {
		name: "a generator's env file",
		files: map[string]string{
			"apps/kustomization.yaml": "secretGenerator:\n- name: gen\n  envs: [creds.env]\n",
			"apps/creds.env":          encrypt(t, "USER=admin\nPASSWORD=s3cr3t-password\n", formats.Dotenv, "", id),
		},
		file: "apps/creds.env",
	}, {
		name: "a manifest from a base",
		files: map[string]string{
			"apps/kustomization.yaml": "resources: [../base]\nnamePrefix: x-\n",
			"base/kustomization.yaml": "resources: [db.sops.yaml]\n",
			"base/db.sops.yaml":       encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id),
		},
		file: "base/db.sops.yaml",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), Options{
				Root: writeTree(t, tc.files), Namespace: "flux-system", Values: keysFor(wrong),
				Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: decryption},
			})
			wantError(t, err, StepDecrypt,
				"decrypting "+tc.file+": no age key in Secret 'sops-age' can decrypt it",
				id.Recipient().String())
			for _, secret := range []string{"s3cr3t-password", "top-secret-token", "AGE-SECRET-KEY", "dG9wLXNlY3JldC10b2tlbg"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %q: %s", secret, err)
				}
			}
		})
	}
}

func TestSOPSErrors(t *testing.T) {
	id := newIdentity(t)
	encrypted := encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id)
	tampered := strings.Replace(encrypted, "password: ENC[", "password: hunter2 # ENC[", 1)
	pgpOnly := encryptFor(t, dbSecret, formats.Yaml, "^(data|stringData)$",
		[]sops.KeyGroup{{&pgp.MasterKey{Fingerprint: "B59DAF469E8C948138901A649732075EA221A7EA", EncryptedKey: "not a real key", CreationDate: time.Now()}}}, id)
	badKey := fakeValues{secrets: map[string]map[string][]byte{"flux-system/sops-age": {
		"bad.agekey": []byte("# comment\nAGE-SECRET-KEY-1NOTAKEYATALL\n"),
	}}}
	plugin := fakeValues{secrets: map[string]map[string][]byte{"flux-system/sops-age": {
		"p.agekey": []byte("AGE-PLUGIN-YUBIKEY-1QQQQQ\n"),
	}}}
	noAgeKey := fakeValues{secrets: map[string]map[string][]byte{"flux-system/sops-age": {"identity.asc": []byte("pgp")}}}
	cases := []struct {
		name   string
		file   string
		values Values
		dec    *kustomizev1.Decryption
		want   []string
		hidden []string
	}{
		{name: "missing decryption Secret", file: encrypted, values: fakeValues{}, dec: decryption,
			want: []string{"decryption Secret 'sops-age' not found in namespace 'flux-system'"}},
		{name: "missing decryption Secret, nothing encrypted", file: dbSecret, values: fakeValues{}, dec: decryption,
			want: []string{"decryption Secret 'sops-age' not found"}},
		{name: "malformed age key", file: encrypted, values: badKey, dec: decryption,
			want: []string{"entry 'bad.agekey': line 2 is not an age secret key"}, hidden: []string{"NOTAKEY"}},
		{name: "age plugin", file: encrypted, values: plugin, dec: decryption,
			want: []string{"age plugin identity"}, hidden: []string{"YUBIKEY"}},
		{name: "no .agekey entry", file: encrypted, values: noAgeKey, dec: decryption,
			want: []string{"decrypting apps/db.yaml: Secret 'sops-age' holds no age key"}},
		{name: "no secretRef", file: encrypted, values: keysFor(id), dec: &kustomizev1.Decryption{Provider: "sops"},
			want: []string{"spec.decryption.secretRef is not set"}},
		{name: "no values", file: encrypted, dec: decryption,
			want: []string{"age keys of Secret 'sops-age' are needed", "no cluster values"}},
		{name: "a value added in plain text", file: tampered, values: keysFor(id), dec: decryption,
			want: []string{"decrypting apps/db.yaml: a value that should be encrypted is not in SOPS's ENC[...] form"}, hidden: []string{"hunter2"}},
		{name: "encrypted for PGP only", file: pgpOnly, values: keysFor(id), dec: decryption,
			want: []string{"encrypted for pgp keys only"}},
		{name: "a KMS service account", file: pgpOnly, values: keysFor(id),
			dec:  &kustomizev1.Decryption{Provider: "sops", SecretRef: decryption.SecretRef, ServiceAccountName: "sops-kms"},
			want: []string{"encrypted for pgp keys only", `spec.decryption.serviceAccountName "sops-kms" would reach a cloud KMS, which weir does not do`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{"apps/db.yaml": tc.file})
			_, err := Build(context.Background(), Options{
				Root: root, Namespace: "flux-system", Values: tc.values,
				Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: tc.dec},
			})
			wantError(t, err, StepDecrypt, tc.want...)
			for _, h := range append(tc.hidden, "s3cr3t-password", "top-secret-token") {
				if strings.Contains(err.Error(), h) {
					t.Errorf("the error shows %q: %s", h, err)
				}
			}
		})
	}
}

func TestSOPSLeftAlone(t *testing.T) {
	id := newIdentity(t)
	annotated := strings.Replace(dbSecret, "  name: db\n", "  name: db\n  annotations:\n    kustomize.toolkit.fluxcd.io/decrypt: disabled\n", 1)
	disabled := encrypt(t, annotated, formats.Yaml, "^(data|stringData)$", id)
	// A custom resource that another controller decrypts (as
	// sops-secrets-operator's SopsSecret): Flux applies it as it is.
	custom := encrypt(t, strings.Replace(dbSecret, "apiVersion: v1\nkind: Secret", "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret", 1),
		formats.Yaml, "^(data|stringData)$", id)
	for _, tc := range []struct {
		name string
		file string
		kind string
		dec  *kustomizev1.Decryption
	}{
		{"annotated decrypt: disabled", disabled, "Secret", decryption},
		{"annotated decrypt: disabled, without spec.decryption", disabled, "Secret", nil},
		{"not a core Secret, without spec.decryption", custom, "SopsSecret", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objects, err := Build(context.Background(), Options{
				Root: writeTree(t, map[string]string{"db.yaml": tc.file}), Namespace: "flux-system", Values: keysFor(id),
				Spec: kustomizev1.KustomizationSpec{Decryption: tc.dec},
			})
			if err != nil {
				t.Fatal(err)
			}
			db := find(t, objects, tc.kind, "db")
			if _, found := db.Object["sops"]; !found || !strings.HasPrefix(str(db, "stringData", "password"), "ENC[") {
				t.Errorf("the object was decrypted: %v", db.Object)
			}
		})
	}
}

// As in Flux, an encrypted Secret that nothing decrypts is never sent to
// the API server: the render fails, naming the Secret, its file and what
// to configure.
func TestSOPSSecretWithoutDecryptionFails(t *testing.T) {
	id := newIdentity(t)
	encrypted := encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id)
	root := writeTree(t, map[string]string{"apps/db.yaml": encrypted})
	_, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", Values: keysFor(id),
		Spec: kustomizev1.KustomizationSpec{Path: "./apps"},
	})
	wantError(t, err, StepDecrypt, "Secret db in apps/db.yaml is SOPS encrypted", "spec.decryption is not set", "kustomize.toolkit.fluxcd.io/decrypt: disabled")

	// weir build masks it instead.
	objects, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", MaskSecrets: true,
		Spec: kustomizev1.KustomizationSpec{Path: "./apps"},
	})
	if err != nil {
		t.Fatalf("a masked render fails: %v", err)
	}
	if got := str(find(t, objects, "Secret", "db"), "stringData", "password"); got != mask {
		t.Errorf("password = %q, want the mask", got)
	}
}

func TestSOPSThenSubstitution(t *testing.T) {
	// As in Flux: objects are decrypted, then substituted.
	id := newIdentity(t)
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  url: postgres://${DB_HOST}/app\n"
	objects, err := Build(context.Background(), Options{
		Root:      writeTree(t, map[string]string{"db.yaml": encrypt(t, secret, formats.Yaml, "^stringData$", id)}),
		Namespace: "flux-system", Values: keysFor(id),
		Spec: kustomizev1.KustomizationSpec{Decryption: decryption, PostBuild: &kustomizev1.PostBuild{
			Substitute: map[string]string{"DB_HOST": "db.internal"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := str(objects[0], "stringData", "url"); got != "postgres://db.internal/app" {
		t.Errorf("url %q", got)
	}
}

func TestMaskSecrets(t *testing.T) {
	id := newIdentity(t)
	files := map[string]string{
		"apps/kustomization.yaml": "resources: [db.yaml, plain.yaml, docker.yaml, cm.yaml]\nsecretGenerator:\n- name: gen\n  literals: [k=generated-secret]\n",
		"apps/db.yaml":            encrypt(t, dbSecret, formats.Yaml, "^(data|stringData)$", id),
		"apps/plain.yaml":         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\nstringData:\n  p: plain-secret\n",
		"apps/docker.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: docker\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: " +
			base64.StdEncoding.EncodeToString([]byte(`{"auths":{"r":{"auth":"docker-secret"}}}`)) + "\n",
		"apps/cm.yaml": fmt.Sprintf(configMap, "visible"),
	}
	for _, tc := range []struct {
		name   string
		values Values
	}{
		{"after decryption", keysFor(id)},
		{"without keys", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objects, err := Build(context.Background(), Options{
				Root: writeTree(t, files), Namespace: "flux-system", Values: tc.values, MaskSecrets: true,
				Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: decryption},
			})
			if err != nil {
				t.Fatal(err)
			}
			masked := base64.StdEncoding.EncodeToString([]byte("**SOPS**"))
			checks := []struct{ kind, name, field, key, want string }{
				{"Secret", "db", "stringData", "password", "**SOPS**"},
				{"Secret", "db", "data", "token", masked},
				{"Secret", "plain", "stringData", "p", "**SOPS**"},
				{"Secret", "docker", "data", ".dockerconfigjson", base64.StdEncoding.EncodeToString([]byte(`{"mask":"**SOPS**"}`))},
				{"ConfigMap", "visible", "data", "key", "value"},
			}
			for _, c := range checks {
				if got := str(find(t, objects, c.kind, c.name), c.field, c.key); got != c.want {
					t.Errorf("%s %s %s.%s = %q, want %q", c.kind, c.name, c.field, c.key, got, c.want)
				}
			}
			for _, u := range objects {
				if _, found := u.Object["sops"]; found {
					t.Errorf("%s %s keeps its sops metadata", u.GetKind(), u.GetName())
				}
				if u.GetKind() == "Secret" && strings.HasPrefix(u.GetName(), "gen-") {
					if got := str(u, "data", "k"); got != masked {
						t.Errorf("generated Secret: %q", got)
					}
				}
			}
			if leak := findString(objects, "s3cr3t-password", "generated-secret", "plain-secret", "docker-secret"); leak != "" {
				t.Errorf("output shows %q", leak)
			}
		})
	}
}

// findString returns the first of the strings found in the objects'
// values, decoding base64 ones too.
func findString(objects []*unstructured.Unstructured, secrets ...string) string {
	var text strings.Builder
	for _, u := range objects {
		data, _ := u.MarshalJSON()
		text.Write(data)
		for _, field := range []string{"data", "stringData"} {
			m, _, _ := unstructured.NestedStringMap(u.Object, field)
			for _, v := range m {
				if d, err := base64.StdEncoding.DecodeString(v); err == nil {
					text.Write(d)
				}
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(text.String(), s) {
			return s
		}
	}
	return ""
}

func TestSOPSKeepsGeneratedNames(t *testing.T) {
	// Decryption asks kustomize for origin annotations (to name files in
	// errors): they must not change the hash suffixes of generated names.
	id := newIdentity(t)
	files := map[string]string{
		"kustomization.yaml": "resources: [plain.yaml]\nsecretGenerator:\n- name: gen\n  literals: [a=b]\nconfigMapGenerator:\n- name: cm\n  literals: [c=d]\n",
		"plain.yaml":         fmt.Sprintf(configMap, "plain"),
	}
	plain, err := Build(context.Background(), Options{Root: writeTree(t, files)})
	if err != nil {
		t.Fatal(err)
	}
	decrypted, err := Build(context.Background(), Options{
		Root: writeTree(t, files), Namespace: "flux-system", Values: keysFor(id),
		Spec: kustomizev1.KustomizationSpec{Decryption: decryption},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ids(plain), ids(decrypted); !reflect.DeepEqual(a, b) {
		t.Errorf("without decryption %v, with %v", a, b)
	}
	for _, u := range decrypted {
		if len(u.GetAnnotations()) != 0 {
			t.Errorf("%s %s: annotations %v", u.GetKind(), u.GetName(), u.GetAnnotations())
		}
	}
}
