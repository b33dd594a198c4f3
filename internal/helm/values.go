package helm

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/strvals"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/redact"
)

// defaultValuesKey is the key valuesFrom reads when it names none.
const defaultValuesKey = "values.yaml"

// ComposeValues merges the valuesFrom references in order, then the
// inline values over them, as helm-controller does. A missing ConfigMap,
// Secret or key is an error unless the reference is optional. Error
// messages never hold values: they may come from Secrets.
func ComposeValues(ctx context.Context, r client.Reader, hr *helmv2.HelmRelease) (map[string]any, error) {
	return composeValues(ctx, r, hr, nil)
}

// composeValues is ComposeValues that records in secrets every value it
// reads from a Secret (the document of the key and every value in it), for
// the messages of the reconcile to mask.
func composeValues(ctx context.Context, r client.Reader, hr *helmv2.HelmRelease, secrets *redact.Secrets) (map[string]any, error) {
	result := map[string]any{}
	for _, ref := range hr.Spec.ValuesFrom {
		key := ref.ValuesKey
		if key == "" {
			key = defaultValuesKey
		}
		var (
			data  []byte
			found bool
		)
		name := client.ObjectKey{Namespace: hr.Namespace, Name: ref.Name}
		switch ref.Kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := r.Get(ctx, name, &cm); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, fmt.Errorf("could not find ConfigMap '%s': %w", name, err)
			}
			var s string
			if s, found = cm.Data[key]; found {
				data = []byte(s)
			} else {
				data, found = cm.BinaryData[key]
			}
		case "Secret":
			var sec corev1.Secret
			if err := r.Get(ctx, name, &sec); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, fmt.Errorf("could not find Secret '%s': %w", name, err)
			}
			if data, found = sec.Data[key]; found {
				secrets.AddDocument(string(data))
			}
		default:
			return nil, fmt.Errorf("valuesFrom kind '%s' of '%s' is not supported (ConfigMap and Secret are)", ref.Kind, ref.Name)
		}
		if !found {
			if ref.Optional {
				continue
			}
			return nil, fmt.Errorf("missing key '%s' in %s '%s'", key, ref.Kind, name)
		}
		if ref.TargetPath != "" {
			if err := strvals.ParseInto(ref.TargetPath+"="+string(data), result); err != nil {
				return nil, fmt.Errorf("unable to merge the value of key '%s' in %s '%s' at path '%s' (the value is not shown): %w",
					key, ref.Kind, name, ref.TargetPath, errors.New("invalid value"))
			}
			continue
		}
		values, err := loader.LoadValues(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("unable to read values from key '%s' in %s '%s': not valid YAML", key, ref.Kind, name)
		}
		result = loader.MergeMaps(result, values)
	}
	return loader.MergeMaps(result, hr.GetValues()), nil
}

// valuesDigest is the config digest Flux records: sha256 of the values'
// canonical JSON (map keys sorted).
func valuesDigest(values map[string]any) string {
	if values == nil {
		// Helm stores no values as null: the same as {} for the digest,
		// or a release without values would always look changed.
		values = map[string]any{}
	}
	b, _ := json.Marshal(values)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// valuesChecksum is the deprecated lastAttemptedValuesChecksum: sha1 hex of
// the values as YAML.
func valuesChecksum(values map[string]any) string {
	b, _ := yaml.Marshal(values)
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}
