package helm

import (
	"testing"

	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// TestTrackChartDigestAsHelmController holds the cases of helm-controller's
// own test of the rule, and the feature gate.
func TestTrackChartDigestAsHelmController(t *testing.T) {
	const hex = "9933f58f8bf459eb199d59ebc8a05683f3944e1242d9f5467d99aa2cf08a5370"
	cases := []struct {
		name, version, revision string
		disabled                bool
		wantVersion, wantDigest string
		wantErr                 bool
	}{
		{name: "semver tag", version: "1.2.3", revision: "1.2.3@sha256:" + hex,
			wantVersion: "1.2.3+9933f58f8bf4", wantDigest: "sha256:" + hex},
		{name: "tag of another version", version: "1.2.3", revision: "1.2.4@sha256:" + hex, wantErr: true},
		{name: "digest reference", version: "1.2.3", revision: "sha256:" + hex,
			wantVersion: "1.2.3+9933f58f8bf4", wantDigest: "sha256:" + hex},
		{name: "not a chart version", version: "sha:123456", revision: "1.2.3@sha:123456", wantErr: true},
		{name: "underscore for plus, metadata replaced", version: "0.1.0+20241101123015", revision: "0.1.0_20241101123015@sha256:" + hex,
			wantVersion: "0.1.0+9933f58f8bf4", wantDigest: "sha256:" + hex},
		{name: "v prefix", version: "1.2.3", revision: "v1.2.3@sha256:" + hex,
			wantVersion: "1.2.3+9933f58f8bf4", wantDigest: "sha256:" + hex},
		// helm-controller records the whole revision when the tag is not
		// a version.
		{name: "tag that is not a version", version: "1.2.3", revision: "latest@sha256:" + hex,
			wantVersion: "1.2.3+9933f58f8bf4", wantDigest: "latest@sha256:" + hex},
		{name: "gate: version kept, digest recorded", version: "1.2.3", revision: "1.2.3@sha256:" + hex, disabled: true,
			wantVersion: "1.2.3", wantDigest: "sha256:" + hex},
		{name: "short digest", version: "1.2.3", revision: "1.2.3@sha256:abc", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := &chart.Chart{Metadata: &chart.Metadata{Version: c.version}}
			digest, err := trackChartDigest(ch, c.revision, c.disabled)
			if c.wantErr {
				if err == nil {
					t.Fatalf("no error; version %q, digest %q", ch.Metadata.Version, digest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Metadata.Version != c.wantVersion || digest != c.wantDigest {
				t.Errorf("version %q, digest %q; want %q, %q", ch.Metadata.Version, digest, c.wantVersion, c.wantDigest)
			}
		})
	}
}

func TestWithoutChartDigest(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3+9933f58f8bf4": "1.2.3",
		"1.2.3":              "1.2.3",
		"1.2.3+build.7":      "1.2.3+build.7",
		"1.2.3+9933F58F8BF4": "1.2.3+9933F58F8BF4",
		"1.2.3+9933f58f8bf":  "1.2.3+9933f58f8bf",
	} {
		if got := WithoutChartDigest(in); got != want {
			t.Errorf("WithoutChartDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
