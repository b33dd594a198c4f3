package helm

import (
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReleaseNameIsShortenedAsHelmControllerDoes(t *testing.T) {
	hr := func(name, target, release string) *helmv2.HelmRelease {
		return &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
			Spec: helmv2.HelmReleaseSpec{TargetNamespace: target, ReleaseName: release}}
	}
	for _, tc := range []struct {
		hr   *helmv2.HelmRelease
		want string
	}{
		{hr("podinfo", "", ""), "podinfo"},
		{hr("podinfo", "apps", ""), "apps-podinfo"},
		{hr("podinfo", "apps", "custom"), "custom"},
		// 61 characters: cut to 40, a hyphen, 12 digits of the SHA-256 of
		// the whole name (sha256sum of the string below).
		{hr("a-very-long-helmrelease-name-for-testing", "some-long-namespace", ""),
			"some-long-namespace-a-very-long-helmrele-bf1f2df4f1cd"},
	} {
		got := ReleaseName(tc.hr)
		if got != tc.want {
			t.Errorf("ReleaseName(%s/%s) = %q, want %q", tc.hr.Spec.TargetNamespace, tc.hr.Name, got, tc.want)
		}
		if len(got) > 53 {
			t.Errorf("%q is longer than 53 characters", got)
		}
	}
}
