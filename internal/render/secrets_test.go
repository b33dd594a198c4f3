package render

import (
	"context"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/getsops/sops/v3/cmd/sops/formats"

	"github.com/weirhq/weir/internal/redact"
)

func TestBuildRecordsTheValuesThatCameFromSecrets(t *testing.T) {
	id := newIdentity(t)
	root := writeTree(t, map[string]string{
		"apps/kustomization.yaml": `resources: [settings.yaml, plain-secret.yaml, app.yaml]
secretGenerator:
- name: generated
  envs: [creds.env]
generatorOptions:
  disableNameSuffixHash: true
patches:
- path: patch.yaml
`,
		"apps/settings.yaml":     encrypt(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  endpoint: sops-endpoint-value\n  port: \"15432\"\n", formats.Yaml, "^data$", id),
		"apps/plain-secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\nstringData:\n  password: plain-git-secret\n",
		"apps/app.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels:\n    team: ${team}\n    region: ${region}\ndata:\n  a: b\n",
		"apps/creds.env":         encrypt(t, "PASSWORD=env-secret\n", formats.Dotenv, "", id),
		"apps/patch.yaml":        encrypt(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  token: patch-secret-value\n", formats.Yaml, "^data$", id),
	})
	values := keysFor(id)
	values.secrets["flux-system/vars"] = map[string][]byte{"team": []byte("team-from-secret")}
	values.configMaps = map[string]map[string]string{"flux-system/vars": {"region": "region-from-configmap"}}
	var secrets redact.Secrets
	_, err := Build(context.Background(), Options{
		Root: root, Namespace: "flux-system", Values: values, Secrets: &secrets,
		Spec: kustomizev1.KustomizationSpec{Path: "./apps", Decryption: decryption, PostBuild: &kustomizev1.PostBuild{
			SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "vars"}, {Kind: "ConfigMap", Name: "vars"}},
		}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	secret := []string{"team-from-secret", "sops-endpoint-value", "15432", "plain-git-secret", "env-secret", "patch-secret-value", id.String()}
	clear := []string{"region-from-configmap", "settings", "endpoint", "flux-system", "ConfigMap", "generated", "password"}
	msg := strings.Join(append(append([]string{}, secret...), clear...), " ")
	masked := secrets.Mask(msg)
	for _, s := range secret {
		if strings.Contains(masked, s) {
			t.Errorf("%q is not masked: %s", s, masked)
		}
	}
	for _, s := range clear {
		if !strings.Contains(masked, s) {
			t.Errorf("%q, which no Secret holds, is masked: %s", s, masked)
		}
	}
}
