package helmrepository

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// MaxIndexSize bounds an index.yaml, as source-controller's
// --helm-index-max-size does by default.
const MaxIndexSize = 50 << 20

// MaxChartSize bounds a chart archive, as source-controller's
// --helm-chart-max-size does by default.
const MaxChartSize = 10 << 20

// LoadIndex parses a Helm repository index, YAML or JSON, as
// source-controller does: the apiVersion must be set, entries that are not
// valid chart versions are dropped, and each chart's versions are sorted
// highest first.
func LoadIndex(b []byte) (*repo.IndexFile, error) {
	if len(b) == 0 {
		return nil, repo.ErrEmptyIndexYaml
	}
	idx := &repo.IndexFile{}
	var err error
	if json.Valid(b) {
		err = json.Unmarshal(b, idx)
	} else {
		err = yaml.UnmarshalStrict(b, idx)
	}
	if err != nil {
		return nil, fmt.Errorf("the index is not valid YAML or JSON: %w", err)
	}
	if idx.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	for name, cvs := range idx.Entries {
		kept := cvs[:0]
		for _, cv := range cvs {
			if cv == nil {
				continue
			}
			if cv.Metadata == nil {
				cv.Metadata = &chart.Metadata{}
			}
			if cv.APIVersion == "" {
				cv.APIVersion = chart.APIVersionV1
			}
			if err := cv.Validate(); skippable(err) != nil {
				continue
			}
			kept = append(kept, cv)
		}
		idx.Entries[name] = kept
	}
	idx.SortEntries()
	return idx, nil
}

// skippable drops the validation errors that Helm and source-controller
// ignore when loading an index: repositories such as JFrog strip a
// dependency's alias, which then looks like a duplicate.
func skippable(err error) error {
	var verr chart.ValidationError
	if errors.As(err, &verr) && strings.HasPrefix(verr.Error(), "validation: more than one dependency with name or alias") {
		return nil
	}
	return err
}

// Revision is the artifact revision of an index as source-controller
// writes it: the sha256 digest of the index as fetched, sha256:<hex>.
func Revision(index []byte) string {
	sum := sha256.Sum256(index)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NormalizeURL returns a default HelmRepository's URL with one trailing
// slash, as source-controller compares and joins them.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, with any password in it: keep the
		// cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("the URL does not parse: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme '%s' is not supported: the URL of a HelmRepository of type 'default' must start with http:// or https://", u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("the URL has no host")
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/") + "/"
	}
	return u.String(), nil
}

// RedactURL hides the password of a URL that carries one, for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: drop whatever comes before an '@', which could be
		// credentials.
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	return u.Redacted()
}
