package helmchart

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// ParseVersion accepts strict semantic versions, with or without a leading
// "v", as source-controller does: "1.2" or "latest" are not versions.
func ParseVersion(s string) (*semver.Version, error) {
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v")); err != nil {
		return nil, err
	}
	return semver.NewVersion(s)
}

// constraint parses spec.version: empty and "*" mean the highest stable
// version.
func constraint(ver string) (*semver.Constraints, error) {
	if ver == "" {
		ver = "*"
	}
	return semver.NewConstraint(ver)
}

// PickFromIndex returns the entry of chart name that spec.version selects
// in a repository's index, as source-controller does: an exact match of
// the version string first, else the highest version within the range
// (the newest entry when two differ only by build metadata).
func PickFromIndex(idx *repo.IndexFile, name, ver, repoURL string) (*repo.ChartVersion, error) {
	cvs, ok := idx.Entries[name]
	if !ok || len(cvs) == 0 {
		return nil, fmt.Errorf("no chart named '%s' in the index of '%s'", name, repoURL)
	}
	if ver != "" {
		for _, cv := range cvs {
			if cv.Version == ver {
				return cv, nil
			}
		}
	}
	c, err := constraint(ver)
	if err != nil {
		return nil, fmt.Errorf("version '%s' is not a semver version or range: %w", ver, err)
	}
	type candidate struct {
		v  *semver.Version
		cv *repo.ChartVersion
	}
	var matches []candidate
	var all []string
	for _, cv := range cvs {
		v, err := ParseVersion(cv.Version)
		if err != nil {
			continue
		}
		all = append(all, cv.Version)
		if c.Check(v) {
			matches = append(matches, candidate{v, cv})
		}
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("no '%s' chart with version matching '%s' found%s", name, ver, available(all))
	}
	sort.SliceStable(matches, func(i, j int) bool {
		a, b := matches[i], matches[j]
		if !a.v.Equal(b.v) {
			return a.v.GreaterThan(b.v)
		}
		return a.cv.Created.After(b.cv.Created)
	})
	return matches[0].cv, nil
}

// PickTag returns the tag that spec.version selects among a registry's
// tags, as source-controller does for OCI charts: an exact match first,
// else the highest version within the range. Tags carry "_" where the
// version has "+", as `helm push` writes them.
func PickTag(tags []string, name, ver, repoURL string) (string, error) {
	if ver != "" {
		for _, t := range tags {
			if TagVersion(t) == ver {
				return t, nil
			}
		}
	}
	c, err := constraint(ver)
	if err != nil {
		return "", fmt.Errorf("version '%s' is not a semver version or range: %w", ver, err)
	}
	var best *semver.Version
	bestTag := ""
	var all []string
	for _, t := range tags {
		v, err := ParseVersion(TagVersion(t))
		if err != nil {
			continue
		}
		all = append(all, TagVersion(t))
		if c.Check(v) && (best == nil || v.GreaterThan(best)) {
			best, bestTag = v, t
		}
	}
	if best == nil {
		return "", fmt.Errorf("no '%s' chart with version matching '%s' found in '%s'%s", name, ver, repoURL, available(all))
	}
	return bestTag, nil
}

// TagVersion is the chart version an OCI tag stands for.
func TagVersion(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// VersionTag is the OCI tag of a chart version.
func VersionTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// available lists a few of the highest versions there are, to end a
// "not found" message with what could be asked for instead.
func available(versions []string) string {
	if len(versions) == 0 {
		return " (the chart has no semver versions)"
	}
	parsed := make([]*semver.Version, 0, len(versions))
	for _, s := range versions {
		if v, err := semver.NewVersion(s); err == nil {
			parsed = append(parsed, v)
		}
	}
	sort.Sort(sort.Reverse(semver.Collection(parsed)))
	const most = 5
	var out []string
	for i, v := range parsed {
		if i == most {
			out = append(out, "...")
			break
		}
		out = append(out, v.Original())
	}
	return " (available: " + strings.Join(out, ", ") + ")"
}
