package dependency

import (
	"context"
	"errors"
	"fmt"

	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrInvalidExpr marks a readyExpr that does not compile: only a spec
// change can fix it.
var ErrInvalidExpr = errors.New("invalid readyExpr")

// ReadyByExpr evaluates a dependsOn entry's readyExpr with the dependent
// as `self` and the dependency as `dep`, as Flux does; it replaces the
// Ready check. An expression that does not compile gives an error that
// wraps ErrInvalidExpr.
func ReadyByExpr(ctx context.Context, expr string, self, dep client.Object) (bool, error) {
	e, err := cel.NewExpression(expr, cel.WithCompile(), cel.WithStructVariables("self", "dep"))
	if err != nil {
		return false, fmt.Errorf("%w: dependsOn readyExpr %q: %w", ErrInvalidExpr, expr, err)
	}
	s, err := runtime.DefaultUnstructuredConverter.ToUnstructured(self)
	if err != nil {
		return false, fmt.Errorf("converting %s for readyExpr: %w", self.GetName(), err)
	}
	d, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		return false, fmt.Errorf("converting dependency %s for readyExpr: %w", dep.GetName(), err)
	}
	ok, err := e.EvaluateBoolean(ctx, map[string]any{"self": s, "dep": d})
	if err != nil {
		return false, fmt.Errorf("evaluating readyExpr %q: %w", expr, err)
	}
	return ok, nil
}
