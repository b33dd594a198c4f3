package render

import (
	"bytes"
	"encoding/base64"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/weirhq/weir/internal/redact"
)

// recordSecretData records the values of a rendered Secret: data as
// written (base64) and decoded, stringData, and every value of the YAML
// documents they hold.
func recordSecretData(secrets *redact.Secrets, u *unstructured.Unstructured) {
	if secrets == nil || u.GetKind() != "Secret" || u.GetAPIVersion() != "v1" {
		return
	}
	data, _, _ := unstructured.NestedMap(u.Object, "data")
	for _, v := range data {
		s, ok := v.(string)
		if !ok {
			continue
		}
		secrets.Add(s)
		if plain, err := base64.StdEncoding.DecodeString(s); err == nil {
			secrets.AddDocument(string(plain))
		}
	}
	stringData, _, _ := unstructured.NestedMap(u.Object, "stringData")
	for _, v := range stringData {
		if s, ok := v.(string); ok {
			secrets.AddDocument(s)
		}
	}
}

// recordDecryptedDocuments records the values SOPS decrypted in a stream
// of YAML or JSON documents: those of plain where encrypted holds an
// ENC[...] value. The rest of the documents (names, kinds, the values
// left in clear by encrypted_regex and the like) is not secret and stays
// readable in messages.
func recordDecryptedDocuments(secrets *redact.Secrets, encrypted, plain []byte) {
	if secrets == nil {
		return
	}
	enc, dec := documents(encrypted), documents(plain)
	for i := range min(len(enc), len(dec)) {
		recordDecrypted(secrets, enc[i], dec[i])
	}
}

func recordDecrypted(secrets *redact.Secrets, encrypted, plain any) {
	switch e := encrypted.(type) {
	case map[string]any:
		p, ok := plain.(map[string]any)
		if !ok {
			return
		}
		for k, v := range e {
			recordDecrypted(secrets, v, p[k])
		}
	case []any:
		p, ok := plain.([]any)
		if !ok {
			return
		}
		for i := range min(len(e), len(p)) {
			recordDecrypted(secrets, e[i], p[i])
		}
	case string:
		if strings.HasPrefix(e, "ENC[") {
			if s, ok := plain.(string); ok {
				secrets.AddDocument(s)
			} else {
				secrets.AddScalars(plain)
			}
		}
	}
}

// documents decodes a YAML or JSON stream; what does not decode is
// dropped.
func documents(data []byte) []any {
	var out []any
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var doc any
		err := dec.Decode(&doc)
		if err != nil { // io.EOF at the end
			return out
		}
		out = append(out, doc)
	}
}
