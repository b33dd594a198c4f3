package render

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fingerprintKey keys the Secret fingerprints of this process; it is made
// once, at random, and never written anywhere.
var fingerprintKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (it crashes the program instead)
	return k
})

// FingerprintSecrets digests each value of each Secret among objects,
// keyed by namespace/name, then by data or stringData key (see
// Report.SecretFingerprints); call it before MaskSecrets.
func FingerprintSecrets(objects []*unstructured.Unstructured) map[string]map[string]string {
	var out map[string]map[string]string
	for _, u := range objects {
		if u.GetKind() != "Secret" || u.GetAPIVersion() != "v1" {
			continue
		}
		prints := map[string]string{}
		for _, field := range []string{"data", "stringData"} {
			entries, _, _ := unstructured.NestedMap(u.Object, field)
			for k, v := range entries {
				mac := hmac.New(sha256.New, fingerprintKey())
				fmt.Fprintf(mac, "%v", v)
				prints[k] = hex.EncodeToString(mac.Sum(nil))
			}
		}
		if out == nil {
			out = map[string]map[string]string{}
		}
		out[u.GetNamespace()+"/"+u.GetName()] = prints
	}
	return out
}
