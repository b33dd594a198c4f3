// Package deps pins modules that packages being written depend on; it goes
// away once they import them.
package deps

import (
	_ "filippo.io/age"
	_ "github.com/fluxcd/pkg/kustomize"
	_ "github.com/fluxcd/pkg/runtime/cel"
	_ "github.com/fluxcd/pkg/ssa"
	_ "github.com/getsops/sops/v3/decrypt"
	_ "sigs.k8s.io/kustomize/api/krusty"
)
