package render

import (
	"context"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/getsops/sops/v3/cmd/sops/formats"
)

// FuzzSubstitute renders a source whose ConfigMap holds a template the
// fuzzer writes, with variables from a Secret whose value the fuzzer
// writes too, next to a SOPS-encrypted Secret that the render decrypts.
// Whatever the input: no panic; an error never shows the Secret's value
// nor the decrypted one; and no object but the decrypted Secret itself
// ever holds the decrypted value (substitution reads postBuild variables,
// never an encrypted source). Its seeds run under plain `go test`; `make
// fuzz` runs it for longer.
func FuzzSubstitute(f *testing.F) {
	const plaintext = "sops-plaintext-7f3a9c"
	id := newIdentity(f)
	encrypted := encrypt(f, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: "+plaintext+"\n  copy: ${TOKEN}\n",
		formats.Yaml, "^(data|stringData)$", id)
	keys := keysFor(id).secrets["flux-system/sops-age"]

	for _, seed := range []struct{ template, value string }{
		{"${TOKEN}", "v"},
		{"${TOKEN:=fallback}", ""},
		{"$${TOKEN}", "v"},
		{"${MISSING:-${TOKEN}}", "v"},
		{"${TOKEN", "v"},
		{"${TOKEN:?}", "v"},
		{"${TOKEN//a/b}", "aaa"},
		{"${TOKEN:0:3}", "abcdef"},
		{"${#TOKEN}", "abc"},
		{"${TOKEN^^}", "abc"},
		{"${}", "v"},
		{"${TOKEN}", ": [unclosed"},
		{"${TOKEN}", "a\nb: c"},
		{"${TOKEN}", "{\"json\": true}"},
		{"${TOKEN}", "*alias"},
		{"${TOKEN}", "'quote"},
		{"x: ${TOKEN}", "\"quoted\""},
		{"${TOKEN}${TOKEN}${TOKEN}", "%!s(MISSING)"},
		{"${password}", "v"},
	} {
		f.Add(seed.template, seed.value)
	}
	f.Fuzz(func(t *testing.T, template, value string) {
		secret := "SECRET<" + value + ">"
		if strings.Contains(template, "SECRET<") || strings.Contains(template, plaintext) || strings.Contains(value, plaintext) {
			return // the input itself holds what must not leak
		}
		root := writeTree(t, map[string]string{
			"apps/db.yaml": encrypted,
			"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uses\ndata:\n  value: |\n    " +
				strings.ReplaceAll(template, "\n", "\n    ") + "\n",
		})
		values := fakeValues{secrets: map[string]map[string][]byte{
			"flux-system/sops-age": keys,
			"flux-system/vars":     {"TOKEN": []byte(secret)},
		}}
		objects, err := Build(context.Background(), Options{
			Root: root, Namespace: "flux-system", Values: values,
			Spec: kustomizev1.KustomizationSpec{
				Path:       "./apps",
				Decryption: decryption,
				PostBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{
					{Kind: "Secret", Name: "vars"},
				}},
			},
		})
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the Secret's value: %s", err)
			}
			if strings.Contains(err.Error(), plaintext) {
				t.Errorf("the error shows the decrypted value: %s", err)
			}
			return
		}
		for _, u := range objects {
			if u.GetKind() == "Secret" && u.GetName() == "db" {
				continue
			}
			data, jerr := u.MarshalJSON()
			if jerr != nil {
				t.Fatal(jerr)
			}
			if strings.Contains(string(data), plaintext) {
				t.Errorf("%s %s holds the decrypted value: %s", u.GetKind(), u.GetName(), data)
			}
		}
	})
}
