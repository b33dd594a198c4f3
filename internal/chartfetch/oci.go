package chartfetch

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/weirhq/weir/internal/source/helmchart"
	"github.com/weirhq/weir/internal/source/helmrepository"
	"github.com/weirhq/weir/internal/source/oci"
	"github.com/weirhq/weir/internal/version"
)

// registrySource is a chart in an OCI registry: where, with which
// credentials, and which layer of the manifest holds it.
type registrySource struct {
	repo name.Repository
	// what names the chart and its ref, for messages.
	what     string
	keychain authn.Keychain
	timeout  time.Duration
	layer    func(*v1.Manifest) (v1.Descriptor, error)
	// digest is the manifest digest when the ref gives it: no request
	// resolves it.
	digest string
	// key names the ref in the cache, to find what it resolved to last.
	key string
	// resolve turns the ref into a tag to resolve, with the options of
	// the registry's requests.
	resolve func(opts []remote.Option) (name.Reference, error)
}

// OCIRepository fetches the chart an OCIRepository points to, as a
// HelmRelease's chartRef uses it: the layer of spec.layerSelector's media
// type, else the Helm chart layer, else the first layer, of the manifest
// spec.ref selects (digest, semver range, tag or "latest", as
// source-controller chooses).
func (f *Fetcher) OCIRepository(ctx context.Context, obj *sourcev1.OCIRepository) (*Chart, error) {
	repo, err := oci.ParseURL(obj.Spec.URL, obj.Spec.Insecure)
	if err != nil {
		return nil, err
	}
	ref := obj.Spec.Reference
	if ref == nil {
		ref = &sourcev1.OCIRepositoryRef{}
	}
	s := registrySource{repo: repo, what: "the chart at " + obj.Spec.URL + " " + describeRef(ref), timeout: timeout(obj.Spec.Timeout), digest: ref.Digest,
		key: fmt.Sprintf("oci %s semver=%s filter=%s tag=%s", repo, ref.SemVer, ref.SemverFilter, ref.Tag)}
	var unread []string
	if obj.Spec.ServiceAccountName != "" {
		unread = append(unread, "serviceAccountName")
	}
	if obj.Spec.CertSecretRef != nil {
		unread = append(unread, "certSecretRef")
	}
	if obj.Spec.ProxySecretRef != nil {
		unread = append(unread, "proxySecretRef")
	}
	if s.keychain, err = f.login(ctx, obj.Namespace, obj.Spec.Provider, unread, obj.Spec.SecretRef, repo.RegistryStr()); err != nil {
		return nil, err
	}
	mediaType := obj.GetLayerMediaType()
	s.layer = func(m *v1.Manifest) (v1.Descriptor, error) {
		if mediaType == "" {
			if d := helmchart.ChartLayer(m); d != nil {
				return *d, nil
			}
		}
		return oci.SelectLayer(m, mediaType)
	}
	s.resolve = func(opts []remote.Option) (name.Reference, error) { return oci.Reference(repo, ref, opts...) }
	return f.pull(ctx, s)
}

// describeRef words an OCIRepository's ref for messages.
func describeRef(ref *sourcev1.OCIRepositoryRef) string {
	switch {
	case ref.Digest != "":
		return "digest " + ref.Digest
	case ref.SemVer != "":
		return "semver " + ref.SemVer
	case ref.Tag != "":
		return "tag " + ref.Tag
	}
	return "tag latest"
}

// helmRegistry fetches chart chartName at version (a version or a semver
// range) from a HelmRepository of type oci, as source-controller does:
// oci://<spec.url>/<chart>, tagged with the version.
func (f *Fetcher) helmRegistry(ctx context.Context, obj *sourcev1.HelmRepository, chartName, ver string) (*Chart, error) {
	repo, url, err := helmchart.ChartRepository(obj, chartName)
	if err != nil {
		return nil, err
	}
	s := registrySource{repo: repo, what: fmt.Sprintf("the chart %s version %s", url, orAny(ver)), timeout: timeout(obj.Spec.Timeout),
		key: fmt.Sprintf("oci %s version=%s", repo, ver)}
	var unread []string
	if obj.Spec.CertSecretRef != nil {
		unread = append(unread, "certSecretRef")
	}
	if s.keychain, err = f.login(ctx, obj.Namespace, obj.Spec.Provider, unread, obj.Spec.SecretRef, repo.RegistryStr()); err != nil {
		return nil, err
	}
	s.layer = func(m *v1.Manifest) (v1.Descriptor, error) {
		if d := helmchart.ChartLayer(m); d != nil {
			return *d, nil
		}
		return v1.Descriptor{}, fmt.Errorf("%s is not a Helm chart: its manifest has no layer of type %s", url, helmchart.ChartLayerType)
	}
	s.resolve = func(opts []remote.Option) (name.Reference, error) {
		if _, err := helmchart.ParseVersion(ver); err == nil {
			return repo.Tag(helmchart.VersionTag(ver)), nil
		}
		tags, err := remote.List(repo, opts...)
		if err != nil {
			return nil, err
		}
		tag, err := helmchart.PickTag(tags, chartName, ver, url)
		if err != nil {
			return nil, err
		}
		return repo.Tag(tag), nil
	}
	return f.pull(ctx, s)
}

func orAny(ver string) string {
	if ver == "" {
		return "*"
	}
	return ver
}

// login is the registry login of a source: that of its secretRef,
// anonymous without one, none offline. A cloud provider, or fields weir
// does not read outside a cluster (unread), leave the chart unavailable.
func (f *Fetcher) login(ctx context.Context, namespace, provider string, unread []string, ref *meta.LocalObjectReference, host string) (authn.Keychain, error) {
	switch {
	case f.Offline:
		return authn.NewMultiKeychain(), nil
	case provider != "" && provider != sourcev1.GenericOCIProvider:
		return nil, &UnavailableError{Msg: fmt.Sprintf("its provider %s logs in with a cloud identity, which weir does not use outside a cluster", provider)}
	case len(unread) > 0:
		return nil, &UnavailableError{Msg: fmt.Sprintf("it sets %s, which weir does not read outside a cluster", strings.Join(unread, " and "))}
	case ref == nil || ref.Name == "":
		return authn.NewMultiKeychain(), nil
	}
	s, err := f.secret(ctx, namespace, ref.Name, "secretRef")
	if err != nil {
		return nil, err
	}
	return helmchart.KeychainFromSecret(s, host)
}

// pull finds the chart of s in the cache, or fetches what is missing: the
// manifest digest (unless the ref gives it), the manifest, the layer.
func (f *Fetcher) pull(ctx context.Context, s registrySource) (*Chart, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c := f.cache()
	var opts []remote.Option
	if !f.Offline {
		puller, err := remote.NewPuller(remote.WithAuthFromKeychain(s.keychain), remote.WithUserAgent("weir/"+version.Version))
		if err != nil {
			return nil, fmt.Errorf("building the registry client of %s: %w", s.repo, err)
		}
		opts = []remote.Option{remote.WithContext(ctx), remote.Reuse(puller)}
	}
	ch := &Chart{}
	digest := s.digest
	if digest == "" {
		if f.Offline {
			if digest = c.ref(s.key); digest == "" {
				return nil, notCached(s.what)
			}
		} else {
			var d string
			err := f.reach(s.repo.RegistryStr(), func() (err error) {
				d, err = resolve(s, opts)
				return err
			})
			switch {
			case err == nil:
				digest = d
				if err := c.setRef(s.key, digest); err != nil {
					return nil, err
				}
			case unreachable(err) && c.ref(s.key) != "":
				digest = c.ref(s.key)
				ch.Stale = fmt.Sprintf("registry %s could not be reached, so %s is the one it gave last (%s)", s.repo.RegistryStr(), s.what, digest)
			default:
				return nil, fetchFailed(s.what, registryError(s.repo.RegistryStr(), err))
			}
		}
	}
	manifest, err := f.manifest(s, digest, opts)
	if err != nil {
		return nil, err
	}
	desc, err := s.layer(manifest)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", s.repo, digest, err)
	}
	p, err := c.blob(desc.Digest.String())
	if err != nil {
		return nil, err
	}
	ch.Path, ch.From = p, s.repo.String()+"@"+digest
	if has(p) {
		return ch, nil
	}
	if f.Offline {
		return nil, notCached(s.what)
	}
	if desc.Size > helmrepository.MaxChartSize {
		return nil, fmt.Errorf("the chart %s@%s is %d bytes, over the %d bytes limit", s.repo, digest, desc.Size, helmrepository.MaxChartSize)
	}
	layer, err := remote.Layer(s.repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return nil, fetchFailed(s.what, registryError(s.repo.RegistryStr(), err))
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fetchFailed(s.what, registryError(s.repo.RegistryStr(), err))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, helmrepository.MaxChartSize+1))
	if err != nil {
		return nil, fetchFailed(s.what, registryError(s.repo.RegistryStr(), err))
	}
	if int64(len(b)) > helmrepository.MaxChartSize {
		return nil, fmt.Errorf("the chart %s@%s is over the %d bytes limit", s.repo, digest, helmrepository.MaxChartSize)
	}
	if got := digestOf(b); got != desc.Digest.String() {
		return nil, fmt.Errorf("the chart layer of %s@%s has digest %s, not %s as its manifest says", s.repo, digest, got, desc.Digest)
	}
	return ch, write(p, b)
}

// resolve finds the manifest digest of s's ref: the tag it selects, then
// one HEAD request.
func resolve(s registrySource, opts []remote.Option) (string, error) {
	ref, err := s.resolve(opts)
	if err != nil {
		return "", err
	}
	switch ref := ref.(type) {
	case name.Digest:
		return ref.DigestStr(), nil
	case name.Tag:
		h, err := oci.ResolveTag(ref, opts...)
		if err != nil {
			return "", err
		}
		return h.String(), nil
	}
	return "", fmt.Errorf("unsupported reference type %T", ref)
}

// manifest reads the manifest of digest from the cache, or fetches it.
func (f *Fetcher) manifest(s registrySource, digest string, opts []remote.Option) (*v1.Manifest, error) {
	p, err := f.cache().blob(digest)
	if err != nil {
		return nil, fmt.Errorf("the ref of %s: %w", s.what, err)
	}
	raw, err := read(p)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		if f.Offline {
			return nil, notCached(s.what)
		}
		desc, err := remote.Get(s.repo.Digest(digest), opts...)
		if err != nil {
			return nil, fetchFailed(s.what, registryError(s.repo.RegistryStr(), err))
		}
		if desc.MediaType.IsIndex() {
			return nil, fmt.Errorf("%s@%s is an image index, not a chart", s.repo, digest)
		}
		if got := digestOf(desc.Manifest); got != digest {
			return nil, fmt.Errorf("the manifest of %s@%s has digest %s", s.repo, digest, got)
		}
		raw = desc.Manifest
		if err := write(p, raw); err != nil {
			return nil, err
		}
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("the manifest of %s@%s does not parse: %w", s.repo, digest, err)
	}
	return m, nil
}
