package kustomize

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// readyByExpr evaluates a dependency's readyExpr with the dependent as
// `self` and the dependency as `dep`, as Flux does.
func readyByExpr(ctx context.Context, expr string, self *kustomizev1.Kustomization, dep client.Object) (bool, error) {
	e, err := cel.NewExpression(expr, cel.WithCompile(), cel.WithStructVariables("self", "dep"))
	if err != nil {
		return false, invalidExpr(fmt.Errorf("dependsOn readyExpr %q: %w", expr, err))
	}
	s, err := runtime.DefaultUnstructuredConverter.ToUnstructured(self)
	if err != nil {
		return false, fmt.Errorf("converting the Kustomization for readyExpr: %w", err)
	}
	d, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		return false, fmt.Errorf("converting dependency for readyExpr: %w", err)
	}
	ok, err := e.EvaluateBoolean(ctx, map[string]any{"self": s, "dep": d})
	if err != nil {
		return false, &stepError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("evaluating readyExpr %q: %w", expr, err)}
	}
	return ok, nil
}
