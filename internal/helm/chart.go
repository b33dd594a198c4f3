package helm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// loadedChart is a chart and where it came from.
type loadedChart struct {
	*chart.Chart
	// Source is "Kind/namespace/name" of the source object.
	Source string
	// OCIDigest is what status.lastAttemptedRevisionDigest and the
	// history's ociDigest record for a chart from an OCIRepository or an
	// ExternalArtifact with a digest revision (see trackChartDigest);
	// empty for other sources.
	OCIDigest string
}

// sourceRef is the object whose artifact holds the chart: chartRef, or the
// HelmChart made from spec.chart.
func sourceRef(hr *helmv2.HelmRelease) (kind, namespace, name string) {
	if hr.HasChartRef() {
		ns := hr.Spec.ChartRef.Namespace
		if ns == "" {
			ns = hr.Namespace
		}
		return hr.Spec.ChartRef.Kind, ns, hr.Spec.ChartRef.Name
	}
	if hr.HasChartTemplate() {
		return sourcev1.HelmChartKind, hr.Spec.Chart.GetNamespace(hr.Namespace), hr.GetHelmChartName()
	}
	return "", "", ""
}

// loadChart reads the chart from its source's artifact. A source that has
// no artifact yet is waited on: its artifact queues the HelmRelease.
func (r *Reconciler) loadChart(ctx context.Context, hr *helmv2.HelmRelease) (*loadedChart, error) {
	kind, ns, name := sourceRef(hr)
	if kind == "" {
		return nil, &stepError{reason: "InvalidChartReference", stalled: true, err: errors.New("the HelmRelease names no chart: set chartRef or chart")}
	}
	ref := kind + "/" + ns + "/" + name
	if r.NoCrossNamespaceRefs && ns != hr.Namespace {
		return nil, &stepError{reason: "AccessDenied", stalled: true,
			err: fmt.Errorf("can't access '%s', cross-namespace references have been blocked", ref)}
	}
	if hr.HasChartTemplate() {
		if err := r.ensureHelmChart(ctx, hr); err != nil {
			return nil, &stepError{reason: helmv2.ArtifactFailedReason, err: err}
		}
	}
	var (
		art      *meta.Artifact
		srcReady *metav1.Condition
	)
	key := client.ObjectKey{Namespace: ns, Name: name}
	switch kind {
	case sourcev1.OCIRepositoryKind:
		var src sourcev1.OCIRepository
		if err := r.Get(ctx, key, &src); err != nil {
			return nil, sourceGetError(ref, err)
		}
		art, srcReady = src.Status.Artifact, conditions.Get(&src, meta.ReadyCondition)
	case sourcev1.HelmChartKind:
		var src sourcev1.HelmChart
		if err := r.Get(ctx, key, &src); err != nil {
			return nil, sourceGetError(ref, err)
		}
		art, srcReady = src.Status.Artifact, conditions.Get(&src, meta.ReadyCondition)
	case sourcev1.ExternalArtifactKind:
		var src sourcev1.ExternalArtifact
		if err := r.Get(ctx, key, &src); err != nil {
			return nil, sourceGetError(ref, err)
		}
		art, srcReady = src.Status.Artifact, conditions.Get(&src, meta.ReadyCondition)
	default:
		return nil, &stepError{reason: "InvalidChartReference", stalled: true,
			err: fmt.Errorf("chartRef kind '%s' is not supported (OCIRepository, HelmChart and ExternalArtifact are)", kind)}
	}
	if art == nil || !r.Store.Has(art) {
		// The source's own failure (a registry that cannot be reached, a
		// tag that does not exist) says more than "no artifact".
		why := "no artifact yet"
		if srcReady != nil && srcReady.Status == metav1.ConditionFalse && srcReady.Message != "" {
			why = srcReady.Message
		}
		return nil, &stepError{reason: helmv2.ArtifactFailedReason, wait: true,
			err: fmt.Errorf("chart source '%s' is not ready: %s; retrying when it has an artifact", ref, why)}
	}
	f, err := os.Open(r.Store.Path(art))
	if err != nil {
		return nil, &stepError{reason: helmv2.ArtifactFailedReason, err: fmt.Errorf("opening the chart of '%s': %w", ref, err)}
	}
	defer f.Close()
	ch, err := loader.LoadArchive(f)
	if err != nil {
		hint := ""
		switch kind {
		case sourcev1.OCIRepositoryKind:
			hint = " (an OCIRepository used as chartRef needs layerSelector mediaType application/vnd.cncf.helm.chart.content.v1.tar+gzip with operation copy)"
		case sourcev1.ExternalArtifactKind:
			hint = " (an ExternalArtifact used as chartRef holds a chart tarball, or a chart folder at its root: Chart.yaml in <chart name>/, e.g. copied to '@artifact/<chart name>/')"
		}
		return nil, &stepError{reason: helmv2.ArtifactFailedReason, stalled: true,
			err: fmt.Errorf("the artifact of '%s' is not a Helm chart%s: %w", ref, hint, err)}
	}
	loaded := &loadedChart{Chart: ch, Source: ref}
	// As helm-controller: the chart of an OCIRepository, or of an
	// ExternalArtifact whose revision holds a digest, gets the digest in
	// its version.
	if kind == sourcev1.OCIRepositoryKind || kind == sourcev1.ExternalArtifactKind && strings.Contains(art.Revision, ":") {
		if loaded.OCIDigest, err = trackChartDigest(ch, art.Revision, r.DisableChartDigestTracking); err != nil {
			// Only another artifact can fix it, and it queues this object.
			return nil, &stepError{reason: "ChartMutateError", stalled: true,
				err: fmt.Errorf("the chart of '%s': %w", ref, err)}
		}
	}
	return loaded, nil
}

func sourceGetError(ref string, err error) error {
	if apierrors.IsNotFound(err) {
		return &stepError{reason: helmv2.ArtifactFailedReason, wait: true, err: fmt.Errorf("chart source '%s' not found", ref)}
	}
	return &stepError{reason: helmv2.ArtifactFailedReason, err: fmt.Errorf("getting chart source '%s': %w", ref, err)}
}

// ensureHelmChart creates or updates the HelmChart that spec.chart
// describes, named and placed as helm-controller does.
func (r *Reconciler) ensureHelmChart(ctx context.Context, hr *helmv2.HelmRelease) error {
	tpl := hr.Spec.Chart
	hc := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: tpl.GetNamespace(hr.Namespace), Name: hr.GetHelmChartName()}}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, hc, func() error {
		if tpl.ObjectMeta != nil {
			hc.Labels = tpl.ObjectMeta.Labels
			hc.Annotations = tpl.ObjectMeta.Annotations
		}
		hc.Spec = sourcev1.HelmChartSpec{
			Chart:   tpl.Spec.Chart,
			Version: tpl.Spec.Version,
			SourceRef: sourcev1.LocalHelmChartSourceReference{
				APIVersion: tpl.Spec.SourceRef.APIVersion,
				Kind:       tpl.Spec.SourceRef.Kind,
				Name:       tpl.Spec.SourceRef.Name,
			},
			Interval:                 tpl.GetInterval(hr.Spec.Interval),
			ReconcileStrategy:        tpl.Spec.ReconcileStrategy,
			ValuesFiles:              tpl.Spec.ValuesFiles,
			IgnoreMissingValuesFiles: tpl.Spec.IgnoreMissingValuesFiles,
		}
		// Copied, as helm-controller does: the HelmChart refuses what it
		// cannot verify, rather than the release installing it unchecked.
		if v := tpl.Spec.Verify; v != nil {
			hc.Spec.Verify = &sourcev1.HelmChartVerification{Provider: v.Provider, SecretRef: v.SecretRef}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating HelmChart '%s/%s': %w", hc.Namespace, hc.Name, err)
	}
	hr.Status.HelmChart = hc.Namespace + "/" + hc.Name
	return nil
}
