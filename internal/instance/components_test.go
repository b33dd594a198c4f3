package instance

import (
	"slices"
	"testing"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/install"
)

// The components an instance lists decide which reconcilers weir's
// Deployment runs: Flux's default four (with or without source-watcher)
// run everything, a subset runs that subset, and only what weir does not
// have is reported as unsupported.
func TestComponentsOfAnInstance(t *testing.T) {
	cases := []struct {
		name        string
		components  []v1.Component
		want        []string
		unsupported []string
	}{
		{"Flux's defaults", []v1.Component{v1.SourceController, v1.KustomizeController, v1.HelmController, v1.NotificationController}, nil, nil},
		{"with source-watcher", []v1.Component{v1.SourceController, v1.KustomizeController, v1.HelmController, v1.NotificationController, v1.SourceWatcher}, nil, nil},
		{"a subset", []v1.Component{v1.SourceController, v1.SourceWatcher, v1.ImageReflectorController},
			[]string{v1.SourceController, v1.SourceWatcher}, []string{v1.ImageReflectorController}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fi := &v1.FluxInstance{Spec: v1.FluxInstanceSpec{Components: c.components}}
			if got := ComponentOptions(fi, install.Options{}).Components; !slices.Equal(got, c.want) {
				t.Errorf("components %v, want %v", got, c.want)
			}
			if got := Unsupported(fi); !slices.Equal(got, c.unsupported) {
				t.Errorf("unsupported %v, want %v", got, c.unsupported)
			}
		})
	}
}
