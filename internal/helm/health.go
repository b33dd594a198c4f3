package helm

import (
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/cel"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
)

// healthWaitOptions makes spec.healthCheckExprs the way Helm's wait judges
// the custom resources they name, as helm-controller does: the CEL status
// readers go before kstatus' generic rules. An expression that does not
// compile stalls the HelmRelease, since only a spec change fixes it.
func healthWaitOptions(hr *helmv2.HelmRelease, cfg *action.Configuration) ([]kube.WaitOption, error) {
	if len(hr.Spec.HealthCheckExprs) == 0 {
		return nil, nil
	}
	newReader, err := cel.NewStatusReader(hr.Spec.HealthCheckExprs)
	if err != nil {
		return nil, &stepError{reason: meta.InvalidCELExpressionReason, stalled: true, err: fmt.Errorf("healthCheckExprs: %w", err)}
	}
	mapper, err := cfg.RESTClientGetter.ToRESTMapper()
	if err != nil {
		return nil, &stepError{reason: "InitFailed", err: fmt.Errorf("discovering the cluster's API: %w", err)}
	}
	return []kube.WaitOption{kube.WithKStatusReaders(newReader(mapper))}, nil
}
