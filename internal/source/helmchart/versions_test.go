package helmchart

import (
	"strings"
	"testing"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

func TestPickFromIndex(t *testing.T) {
	entry := func(v string, created time.Time, url string) *repo.ChartVersion {
		return &repo.ChartVersion{Metadata: &chart.Metadata{Name: "app", Version: v}, Created: created, URLs: []string{url}}
	}
	now := time.Now()
	idx := &repo.IndexFile{Entries: map[string]repo.ChartVersions{"app": {
		entry("2.0.0-rc.1", now, "rc"),
		entry("1.2.0+build.1", now.Add(-time.Hour), "older"),
		entry("1.2.0+build.2", now, "newer"),
		entry("1.1.0", now, "1.1"),
		entry("v1.0.0", now, "v1"),
		entry("1.0", now, "not-strict"),
	}}}
	cases := []struct{ version, want, err string }{
		{"", "newer", ""},
		{"*", "newer", ""},
		{"~1.1", "1.1", ""},
		{"<1.1.0", "v1", ""},
		{"1.0", "not-strict", ""}, // an exact match comes first
		{">=2.0.0-0", "rc", ""},
		{">=3.0.0", "", "no 'app' chart with version matching '>=3.0.0' found (available: 2.0.0-rc.1, 1.2.0+build."},
		{"not a range", "", "version 'not a range' is not a semver version or range"},
	}
	for _, c := range cases {
		cv, err := PickFromIndex(idx, "app", c.version, "https://charts/")
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("version %q: %v; want an error %q", c.version, err, c.err)
			}
		case err != nil || cv.URLs[0] != c.want:
			t.Errorf("version %q: %v, %v; want %s", c.version, cv, err, c.want)
		}
	}
	if _, err := PickFromIndex(idx, "nope", "", "https://charts/"); err == nil || err.Error() != "no chart named 'nope' in the index of 'https://charts/'" {
		t.Errorf("a missing chart: %v", err)
	}
}

func TestPickTag(t *testing.T) {
	tags := []string{"1.0.0", "1.1.0", "1.2.0_build.1", "2.0.0-rc.1", "latest", "v0.9.0"}
	cases := []struct{ version, want string }{
		{"", "1.2.0_build.1"},
		{"<1.1.0", "1.0.0"},
		{"1.2.0+build.1", "1.2.0_build.1"},
		{">=2.0.0-0", "2.0.0-rc.1"},
		{"^0.9", "v0.9.0"},
	}
	for _, c := range cases {
		if got, err := PickTag(tags, "app", c.version, "oci://r/app"); err != nil || got != c.want {
			t.Errorf("version %q: %q, %v; want %q", c.version, got, err, c.want)
		}
	}
	if _, err := PickTag(tags, "app", ">=3", "oci://r/app"); err == nil || !strings.Contains(err.Error(), "no 'app' chart with version matching '>=3' found in 'oci://r/app'") {
		t.Errorf("no match: %v", err)
	}
}

func TestVersionMetadata(t *testing.T) {
	if got, err := withMetadata("1.0.0+old", "abc123def456.3"); err != nil || got != "1.0.0+abc123def456.3" {
		t.Errorf("withMetadata = %q, %v", got, err)
	}
	if _, err := withMetadata("latest", "3"); err == nil || !strings.Contains(err.Error(), "chart metadata patch error") {
		t.Errorf("withMetadata of a non-semver version: %v", err)
	}
	if got := shortRevision("main@sha1:0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("shortRevision = %q", got)
	}
}
