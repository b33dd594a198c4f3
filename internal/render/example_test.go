package render_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"github.com/weirhq/weir/internal/render"
)

func ExampleBuild() {
	// An unpacked source: a folder of plain manifests, no kustomization.yaml.
	root, err := os.MkdirTemp("", "source-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	_ = os.MkdirAll(filepath.Join(root, "apps", "web"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "apps", "web", "settings.yaml"), []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello ${NAME:=world}
`), 0o644)

	objects, err := render.Build(context.Background(), render.Options{
		Root:      root,
		Namespace: "flux-system",
		Spec: kustomizev1.KustomizationSpec{
			Path:            "./apps/web",
			TargetNamespace: "web",
			NamePrefix:      "demo-",
			PostBuild:       &kustomizev1.PostBuild{Substitute: map[string]string{"NAME": "weir"}},
		},
		// Values would serve postBuild.substituteFrom and
		// decryption.secretRef; this spec needs neither.
	})
	if err != nil {
		var re *render.Error
		if errors.As(err, &re) {
			fmt.Printf("%s failed: %v\n", re.Step, err)
		}
		return
	}
	for _, o := range objects {
		fmt.Println(o.GetKind(), o.GetNamespace()+"/"+o.GetName(), o.Object["data"])
	}

	_, err = render.Build(context.Background(), render.Options{Root: root, Spec: kustomizev1.KustomizationSpec{Path: "./apps/db"}})
	fmt.Println(err)
	// Output:
	// ConfigMap web/demo-settings map[greeting:hello weir]
	// path './apps/db' not found in the source
}
