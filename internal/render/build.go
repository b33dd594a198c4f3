package render

import (
	"fmt"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// buildLock serializes kustomize builds: kustomize keeps state in globals
// (its OpenAPI schema) and has raced on them (kubernetes-sigs/kustomize
// #3659). Other code of the process must not run kustomize alongside:
// weir's builds all go through Build.
var buildLock sync.Mutex

// builtinSchema is what kustomize reports while its built-in OpenAPI
// schema is in use.
var builtinSchema = openapi.GetSchemaVersion()

// kustomizeBuild runs kustomize on dir as Flux's kustomize.Build does:
// plugins disabled except the built-in ones, files loadable from anywhere
// in fs (fs is what keeps them inside the source), no reordering, panics
// turned into errors.
//
// Flux resets and re-parses kustomize's global OpenAPI schema around every
// build, so that a kustomization's openapi field cannot leak into the next
// one; that costs some 25 ms and 12 MB a build. Here the reset happens only
// around builds whose kustomizations set openapi (customSchema) and after
// any build that left a schema other than the built-in one behind (a
// remote base's, say); the other builds keep the parsed built-in schema.
func kustomizeBuild(fs filesys.FileSystem, dir string, customSchema bool) (m resmap.ResMap, err error) {
	buildLock.Lock()
	defer buildLock.Unlock()
	defer func() {
		// kustomize panics on some malformed input; Flux recovers too.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("kustomize failed on malformed input: %v", r)
		}
	}()
	if customSchema || openapi.GetSchemaVersion() != builtinSchema {
		openapi.ResetOpenAPI()
		// Loaded first, so that openapi.path schemas add to the built-in
		// ones, as in Flux.
		_ = openapi.Schema()
	}
	defer func() {
		if customSchema || openapi.GetSchemaVersion() != builtinSchema {
			openapi.ResetOpenAPI()
		}
	}()
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	return k.Run(fs, dir)
}

// usesOpenAPI tells whether a kustomization reachable from dir sets the
// openapi field.
func usesOpenAPI(fs filesys.FileSystem, root, dir string) (bool, error) {
	found := false
	err := walkKustomizations(fs, root, dir, func(_, _ string, k *kustypes.Kustomization) error {
		found = found || len(k.OpenAPI) > 0
		return nil
	})
	return found, err
}
