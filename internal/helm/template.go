package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// Template renders hr's chart with values as an install by weir would —
// release name and namespace, post-renderers, commonMetadata and the
// origin labels — without contacting a cluster, as `helm template` does.
// The release it returns holds the manifest and the hooks.
func Template(ctx context.Context, hr *helmv2.HelmRelease, ch *chart.Chart, values map[string]any) (*release.Release, error) {
	spec := hr.GetInstall()
	a := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	a.DryRunStrategy = action.DryRunClient
	a.Replace = true
	a.ReleaseName = ReleaseName(hr)
	a.Namespace = hr.GetReleaseNamespace()
	a.DisableHooks = spec.DisableHooks
	a.SkipSchemaValidation = spec.DisableSchemaValidation
	a.IncludeCRDs = spec.CRDs != helmv2.Skip && !spec.SkipCRDs
	a.PostRenderer = postRenderer{hr: hr}
	a.PostRenderStrategy = postRenderStrategy(hr)
	a.Labels = map[string]string{NameLabel: hr.Name, NamespaceLabel: hr.Namespace}
	res, err := a.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", ch.Name(), err)
	}
	return asRelease(res)
}

// LastRelease reads the latest release of hr from Helm's storage in the
// cluster of cfg (Secrets in the storage namespace, as the helm command
// keeps them); nil when there is none.
func LastRelease(cfg *rest.Config, hr *helmv2.HelmRelease) (*release.Release, error) {
	ns := hr.GetStorageNamespace()
	ac := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := ac.Init(NewRESTClientGetter(cfg, ns), ns, "secret"); err != nil {
		return nil, fmt.Errorf("connecting the Helm SDK to the cluster: %w", err)
	}
	rel, err := ac.Releases.Last(ReleaseName(hr))
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %s/%s from Helm's storage: %w", ns, ReleaseName(hr), err)
	}
	return asRelease(rel)
}
