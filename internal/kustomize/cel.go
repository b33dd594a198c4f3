package kustomize

import (
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/weirhq/weir/internal/apply"
)

// healthEvaluators compiles spec.healthCheckExprs into evaluators by kind.
// An expression that does not compile stalls the Kustomization: only a
// spec change can fix it.
func healthEvaluators(obj *kustomizev1.Kustomization) (apply.Evaluators, error) {
	if len(obj.Spec.HealthCheckExprs) == 0 {
		return nil, nil
	}
	out := apply.Evaluators{}
	for i, hc := range obj.Spec.HealthCheckExprs {
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return nil, invalidExpr(fmt.Errorf("healthCheckExprs[%d]: apiVersion %q: %w", i, hc.APIVersion, err))
		}
		ev, err := cel.NewStatusEvaluator(&hc.HealthCheckExpressions)
		if err != nil {
			return nil, invalidExpr(fmt.Errorf("healthCheckExprs[%d] (%s %s): %w", i, hc.APIVersion, hc.Kind, err))
		}
		out[schema.GroupKind{Group: gv.Group, Kind: hc.Kind}] = ev.Evaluate
	}
	return out, nil
}

func invalidExpr(err error) error {
	return &waitError{reason: meta.InvalidCELExpressionReason, stalled: true, err: err}
}
