package helmchart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/source/helmrepository"
)

// source is the object a HelmChart builds from.
type source struct {
	helmRepo *sourcev1.HelmRepository
	gitRepo  *sourcev1.GitRepository
	bucket   *sourcev1.Bucket
	// current is true when the source's artifact is the one the last
	// good build came from and the spec did not change since: there is
	// nothing to do.
	current bool
}

// sourceError is a failure to find or read the source, with
// source-controller's reason.
type sourceError struct {
	reason string
	err    error
	// stall: only a spec change helps. waiting: the source has no
	// artifact yet, and its watch brings the chart back when it does.
	stall, waiting bool
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// fetchSource reads spec.sourceRef (in the HelmChart's namespace, as
// source-controller allows) and checks that it has an artifact, except a
// HelmRepository of type oci, which has none.
func (r *Reconciler) fetchSource(ctx context.Context, obj *sourcev1.HelmChart) (*source, error) {
	ref := obj.Spec.SourceRef
	key := client.ObjectKey{Namespace: obj.Namespace, Name: ref.Name}
	var src source
	var art *meta.Artifact
	switch ref.Kind {
	case sourcev1.HelmRepositoryKind:
		src.helmRepo = &sourcev1.HelmRepository{}
		if err := r.Get(ctx, key, src.helmRepo); err != nil {
			return nil, getSourceError(ref.Kind, key, err)
		}
		if src.helmRepo.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
			return &src, nil
		}
		art = src.helmRepo.Status.Artifact
	case sourcev1.GitRepositoryKind:
		src.gitRepo = &sourcev1.GitRepository{}
		if err := r.Get(ctx, key, src.gitRepo); err != nil {
			return nil, getSourceError(ref.Kind, key, err)
		}
		art = src.gitRepo.Status.Artifact
	case sourcev1.BucketKind:
		src.bucket = &sourcev1.Bucket{}
		if err := r.Get(ctx, key, src.bucket); err != nil {
			return nil, getSourceError(ref.Kind, key, err)
		}
		art = src.bucket.Status.Artifact
	default:
		return nil, &sourceError{reason: "UnsupportedSourceKind", stall: true,
			err: fmt.Errorf("unsupported source kind '%s', must be one of: %v", ref.Kind,
				[]string{sourcev1.HelmRepositoryKind, sourcev1.GitRepositoryKind, sourcev1.BucketKind})}
	}
	if art == nil || !r.stored(art) {
		return nil, &sourceError{reason: "NoSourceArtifact", waiting: true,
			err: fmt.Errorf("no artifact available for %s source '%s'", ref.Kind, ref.Name)}
	}
	src.current = r.builtFrom(obj, art.Revision)
	obj.Status.ObservedSourceArtifactRevision = art.Revision
	return &src, nil
}

func getSourceError(kind string, key client.ObjectKey, err error) error {
	if apierrors.IsNotFound(err) {
		return &sourceError{reason: "SourceUnavailable",
			err: fmt.Errorf("failed to get source: %s '%s' not found in namespace '%s'", kind, key.Name, key.Namespace)}
	}
	return &sourceError{reason: "SourceUnavailable", err: fmt.Errorf("failed to get source: %w", err)}
}

// stored reports whether a source's artifact is in the store, at its
// recorded size: its digest was checked when it was written, and checking
// it again on every HelmChart would read every source in full.
func (r *Reconciler) stored(a *meta.Artifact) bool {
	fi, err := os.Stat(r.Store.Path(a))
	return err == nil && fi.Mode().IsRegular() && (a.Size == nil || *a.Size == fi.Size())
}

// builtFrom reports whether the last reconcile built, from the source
// artifact of this revision, the chart that is stored, for the current
// spec: a new interval then has nothing to do.
func (r *Reconciler) builtFrom(obj *sourcev1.HelmChart, revision string) bool {
	a := obj.Status.Artifact
	return a != nil && conditions.IsReady(obj) && obj.Status.ObservedSourceArtifactRevision == revision &&
		obj.Status.ObservedGeneration == obj.Generation && obj.Status.ObservedChartName != "" && r.Store.Has(a)
}

// buildChart builds the chart from its source.
func (r *Reconciler) buildChart(ctx context.Context, obj *sourcev1.HelmChart, src *source) (*build, error) {
	switch {
	case src.gitRepo != nil:
		return r.buildFromTarball(ctx, obj, sourcev1.GitRepositoryKind, src.gitRepo.Name, src.gitRepo.Status.Artifact)
	case src.bucket != nil:
		return r.buildFromTarball(ctx, obj, sourcev1.BucketKind, src.bucket.Name, src.bucket.Status.Artifact)
	case src.helmRepo.Spec.Type == sourcev1.HelmRepositoryTypeOCI:
		return r.buildFromRegistry(ctx, obj, src.helmRepo)
	default:
		return r.buildFromIndex(ctx, obj, src.helmRepo)
	}
}

// chartName is the form of a chart name in a repository, as
// source-controller checks it.
var chartName = regexp.MustCompile(`^([-a-z0-9]+/?\.?)+$`)

func checkChartName(name string) error {
	if name == "" {
		return failBuild(errChartReference, "no chart name given in spec.chart")
	}
	if !chartName.MatchString(name) {
		return failBuild(errChartReference, "invalid chart name '%s': a valid name must be lower case letters and numbers and MAY be separated with dashes (-), slashes (/) or periods (.)", name)
	}
	return nil
}

// authFailed is a failure of credentials or TLS trust: source-controller's
// reason AuthenticationFailed, retried.
var authFailed = buildReason{reason: sourcev1.AuthenticationFailedReason}

// buildFromIndex picks the chart version in the stored index of a
// HelmRepository of type default and pulls it, unless it is the stored
// one.
func (r *Reconciler) buildFromIndex(ctx context.Context, obj *sourcev1.HelmChart, repo *sourcev1.HelmRepository) (*build, error) {
	if err := checkChartName(obj.Spec.Chart); err != nil {
		return nil, err
	}
	if obj.Spec.Verify != nil {
		// source-controller fails these too, with "not implemented".
		return nil, failBuild(errChartVerification, "signature verification (spec.verify) is only supported for charts from a HelmRepository of type 'oci': %w", errCannotVerify)
	}
	idx, err := r.indexes.load(r.Store, repo.Status.Artifact)
	if err != nil {
		return nil, failBuild(errChartPull, "failed to read the index of HelmRepository '%s': %w", repo.Name, err)
	}
	repoURL := helmrepository.RedactURL(repo.Spec.URL)
	if u, err := helmrepository.NormalizeURL(repo.Spec.URL); err == nil {
		repoURL = helmrepository.RedactURL(u)
	}
	cv, err := PickFromIndex(idx, obj.Spec.Chart, obj.Spec.Version, repoURL)
	if err != nil {
		return nil, failBuild(errChartReference, "failed to get chart version for remote reference: %w", err)
	}
	meta := generationMetadata(obj, "")
	version, err := withMetadata(cv.Version, meta)
	if err != nil {
		return nil, err
	}
	if r.upToDate(obj, cv.Name, version) {
		return cachedBuild(obj, cv.Name, version, meta != ""), nil
	}
	if len(cv.URLs) == 0 {
		return nil, failBuild(errChartPull, "chart '%s' version '%s' has no download URL in the index", cv.Name, cv.Version)
	}
	getter, err := helmrepository.NewGetter(ctx, r.Client, repo)
	if err != nil {
		return nil, &buildError{reason: authFailed, err: err}
	}
	defer getter.Close()
	fetchCtx, cancel := context.WithTimeout(ctx, repo.GetTimeout())
	defer cancel()
	tgz, err := getter.FetchChart(fetchCtx, cv.URLs[0])
	if err != nil {
		if errors.Is(err, helmrepository.ErrAuthentication) {
			return nil, &buildError{reason: authFailed, err: fmt.Errorf("failed to authenticate with the Helm repository: %w", err)}
		}
		return nil, failBuild(errChartPull, "failed to download chart for remote reference: %w", err)
	}
	return buildRemote(obj, tgz, cv.Name, version, meta != "")
}

// buildFromRegistry picks the chart version among the tags of
// <HelmRepository url>/<chart> in an OCI registry (no listing when
// spec.version is an exact version) and pulls it, unless it is the stored
// one.
func (r *Reconciler) buildFromRegistry(ctx context.Context, obj *sourcev1.HelmChart, repo *sourcev1.HelmRepository) (*build, error) {
	if err := checkChartName(obj.Spec.Chart); err != nil {
		return nil, err
	}
	if p := repo.Spec.Provider; p != "" && p != sourcev1.GenericOCIProvider {
		return nil, &buildError{reason: buildReason{reason: sourcev1.InvalidProviderConfigurationReason},
			err: fmt.Errorf("HelmRepository '%s' has provider '%s', which weir does not support: use provider 'generic' with a secretRef", repo.Name, p)}
	}
	reg, err := newRegistry(ctx, r.Client, repo, obj.Spec.Chart)
	if err != nil {
		var be *buildError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, &buildError{reason: authFailed, err: err}
	}
	defer reg.close()
	fetchCtx, cancel := context.WithTimeout(ctx, repo.GetTimeout())
	defer cancel()

	var tag string
	if _, err := ParseVersion(obj.Spec.Version); err == nil {
		tag = VersionTag(obj.Spec.Version)
	} else {
		tags, err := reg.tags(fetchCtx)
		if err != nil {
			return nil, registryError(fmt.Errorf("failed to get chart version for remote reference: %w", err))
		}
		if tag, err = PickTag(tags, obj.Spec.Chart, obj.Spec.Version, reg.url); err != nil {
			return nil, failBuild(errChartPull, "failed to get chart version for remote reference: %w", err)
		}
	}
	meta := generationMetadata(obj, "")
	version, err := withMetadata(TagVersion(tag), meta)
	if err != nil {
		return nil, err
	}
	if r.upToDate(obj, obj.Spec.Chart, version) {
		return cachedBuild(obj, obj.Spec.Chart, version, meta != ""), nil
	}
	verify, err := r.chartVerifier(ctx, obj)
	if err != nil {
		return nil, err
	}
	tgz, verified, err := reg.pull(fetchCtx, tag, verify)
	if err != nil {
		var be *buildError
		if errors.As(err, &be) && be.reason == errChartVerification {
			return nil, err
		}
		return nil, registryError(fmt.Errorf("failed to download chart for remote reference: %w", err))
	}
	b, err := buildRemote(obj, tgz, obj.Spec.Chart, version, meta != "")
	if err != nil {
		return nil, err
	}
	b.verified = verified
	if verify != nil && !verified {
		// The trust policy asked for no verification of this chart.
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
	}
	return b, nil
}

// registryError gives a registry failure its reason.
func registryError(err error) error {
	if errors.Is(err, errAuth) {
		return &buildError{reason: authFailed, err: fmt.Errorf("failed to authenticate with the Helm repository: %w", err)}
	}
	return &buildError{reason: errChartPull, err: err}
}

// buildFromTarball unpacks the artifact of a GitRepository or a Bucket and
// builds the chart at spec.chart in it. With reconcileStrategy Revision,
// the version gets the source's revision as build metadata (<version>+<12
// hex digits> of the commit or of the Bucket's digest), so that each
// revision is a new chart version.
func (r *Reconciler) buildFromTarball(ctx context.Context, obj *sourcev1.HelmChart, kind, name string, art *meta.Artifact) (*build, error) {
	meta := ""
	if obj.Spec.ReconcileStrategy == sourcev1.ReconcileStrategyRevision {
		meta = shortRevision(art.Revision)
	}
	meta = generationMetadata(obj, meta)
	dir, err := os.MkdirTemp("", "helmchart-source-")
	if err != nil {
		return nil, failBuild(errChartPull, "failed to create temporary working directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := r.Store.Extract(ctx, art, dir); err != nil {
		return nil, failBuild(errChartPull, "failed to unpack the artifact of %s '%s': %w", kind, name, err)
	}
	return r.buildLocal(ctx, obj, dir, meta)
}
