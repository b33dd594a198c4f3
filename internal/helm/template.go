package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// Capabilities are what a chart rendered without a cluster sees of the
// cluster it is for, as .Capabilities. The zero value is Helm's default:
// the Kubernetes version of the libraries weir is built with, and the
// built-in API versions.
type Capabilities struct {
	// KubeVersion is .Capabilities.KubeVersion, such as v1.34.0; empty
	// for the default (DefaultKubeVersion).
	KubeVersion string
	// APIVersions are added to the built-in ones in
	// .Capabilities.APIVersions: "group/version" and
	// "group/version/Kind", as a cluster's discovery lists them.
	APIVersions []string
}

// DefaultKubeVersion is the Kubernetes version a chart rendered without a
// cluster sees by default.
func DefaultKubeVersion() string { return common.DefaultCapabilities.KubeVersion.Version }

// ParseKubeVersion checks a Kubernetes version given for
// Capabilities.KubeVersion.
func ParseKubeVersion(v string) error {
	_, err := parseKubeVersion(v)
	return err
}

func parseKubeVersion(v string) (*common.KubeVersion, error) {
	kv, err := common.ParseKubeVersion(v)
	if err != nil {
		return nil, fmt.Errorf("'%s' is not a Kubernetes version such as v1.34.0: %w", v, err)
	}
	return kv, nil
}

// Template renders hr's chart with values as an install by weir would —
// release name and namespace, post-renderers, commonMetadata and the
// origin labels — without contacting a cluster, as `helm template` does,
// with caps as the cluster's capabilities. The release it returns holds
// the manifest and the hooks.
func Template(ctx context.Context, hr *helmv2.HelmRelease, ch *chart.Chart, values map[string]any, caps Capabilities) (*release.Release, error) {
	spec := hr.GetInstall()
	a := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	a.DryRunStrategy = action.DryRunClient
	if caps.KubeVersion != "" {
		kv, err := parseKubeVersion(caps.KubeVersion)
		if err != nil {
			return nil, err
		}
		a.KubeVersion = kv
	}
	a.APIVersions = caps.APIVersions
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
