package helm

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// trackChartDigest applies helm-controller's rule to a chart read from an
// OCIRepository, whose artifact revision is "<tag>@sha256:<manifest
// digest>" (or "sha256:<digest>" for a digest reference). It returns the
// digest recorded as status.lastAttemptedRevisionDigest and
// status.history[].ociDigest: the manifest digest when the tag is a
// semantic version, the whole revision otherwise (helm-controller's
// quirk, kept so that both write the same status). Unless disabled (the
// DisableChartDigestTracking feature gate), the chart's version becomes
// "<version>+<first 12 hex digits of the digest>", so that a tag pushed
// again with other content is a new version: that is what
// lastAttemptedRevision, the history's chartVersion, the release's
// chart (helm list) and .Chart.Version in templates show.
//
// A semver tag that is not the chart's version (build metadata aside;
// "_" in a tag stands for "+") is refused, as in Flux.
func trackChartDigest(ch *chart.Chart, revision string, disabled bool) (string, error) {
	ver, err := semver.NewVersion(ch.Metadata.Version)
	if err != nil {
		return "", fmt.Errorf("invalid chart version %s", ch.Metadata.Version)
	}
	revDigest := revision
	if tagVer, ok := semverTag(revision); ok {
		tag, digest, found := strings.Cut(revision, "@")
		if !found || strings.Contains(digest, "@") || !tagVer.Equal(ver) {
			return "", fmt.Errorf("artifact revision %s does not match chart version %s", tag, ch.Metadata.Version)
		}
		revDigest = digest
	}
	short, err := shortDigest(revDigest)
	if err != nil {
		return "", err
	}
	withDigest, err := ver.SetMetadata(short)
	if err != nil {
		return "", fmt.Errorf("invalid artifact revision %s: %w", revision, err)
	}
	if !disabled {
		ch.Metadata.Version = withDigest.String()
	}
	return revDigest, nil
}

// semverTag parses the tag of a "<tag>@<digest>" revision as a semantic
// version, reading "_" as "+" as Helm does for OCI tags. A revision
// without "@" is parsed whole.
func semverTag(revision string) (*semver.Version, bool) {
	candidate := revision
	if tag, _, found := strings.Cut(revision, "@"); found {
		candidate = strings.ReplaceAll(tag, "_", "+")
	}
	v, err := semver.NewVersion(candidate)
	return v, err == nil
}

// shortDigest is the first 12 hex digits of "<algorithm>:<hex>".
func shortDigest(revision string) (string, error) {
	parts := strings.Split(revision, ":")
	if len(parts) != 2 || len(parts[1]) < 12 {
		return "", fmt.Errorf("invalid artifact revision %s", revision)
	}
	return parts[1][:12], nil
}

// WithoutChartDigest is version without the "+<12 hex digits>" that digest
// tracking appends, for comparing a release's chart with a local copy.
func WithoutChartDigest(version string) string {
	base, meta, found := strings.Cut(version, "+")
	if !found || len(meta) != 12 || strings.Trim(meta, "0123456789abcdef") != "" {
		return version
	}
	return base
}
