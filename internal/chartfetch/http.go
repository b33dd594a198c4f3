package chartfetch

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/source/helmchart"
	"github.com/weirhq/weir/internal/source/helmrepository"
)

// HelmRepository fetches chart chartName at ver (a version or a semver
// range; empty for the highest stable version) from a HelmRepository, as a
// HelmRelease's spec.chart names it: from its index for type default,
// from the registry for type oci.
func (f *Fetcher) HelmRepository(ctx context.Context, obj *sourcev1.HelmRepository, chartName, ver string) (*Chart, error) {
	if obj.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
		return f.helmRegistry(ctx, obj, chartName, ver)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout(obj.Spec.Timeout))
	defer cancel()
	c := f.cache()
	base, err := helmrepository.NormalizeURL(obj.Spec.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid Helm repository URL: %w", err)
	}
	at := helmrepository.RedactURL(base)
	what := fmt.Sprintf("the chart %s version %s of %s", chartName, orAny(ver), at)
	var getter *helmrepository.Getter
	if !f.Offline {
		if obj.Spec.SecretRef != nil && obj.Spec.SecretRef.Name != "" {
			if _, err := f.secret(ctx, obj.Namespace, obj.Spec.SecretRef.Name, "secretRef"); err != nil {
				return nil, err
			}
		}
		if obj.Spec.CertSecretRef != nil && obj.Spec.CertSecretRef.Name != "" {
			if _, err := f.secret(ctx, obj.Namespace, obj.Spec.CertSecretRef.Name, "certSecretRef"); err != nil {
				return nil, err
			}
		}
		if getter, err = helmrepository.NewGetter(ctx, noSecrets{f.Secrets}, obj); err != nil {
			return nil, err
		}
		defer getter.Close()
	}

	ch := &Chart{}
	index, stale, err := f.index(ctx, getter, base)
	if err != nil {
		return nil, fetchFailed(what, err)
	}
	if index == nil {
		return nil, notCached("the index of " + at)
	}
	if stale != nil {
		ch.Stale = fmt.Sprintf("Helm repository %s could not be reached (%v), so its index is the one it gave last", at, stale)
	}
	idx, err := helmrepository.LoadIndex(index)
	if err != nil {
		return nil, fmt.Errorf("the index of %s: %w", at, err)
	}
	cv, err := helmchart.PickFromIndex(idx, chartName, ver, at)
	if err != nil {
		return nil, err
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart '%s' version '%s' has no download URL in the index of %s", cv.Name, cv.Version, at)
	}
	ch.From = chartURL(base, cv.URLs[0])
	// The index's digest names the package; without one, the cache
	// remembers what the entry's URL gave.
	key := fmt.Sprintf("http %s %s %s %s", base, cv.Name, cv.Version, cv.URLs[0])
	digest := cv.Digest
	if digest == "" {
		digest = c.ref(key)
	}
	if digest != "" {
		if ch.Path, err = c.blob(digest); err != nil {
			return nil, fmt.Errorf("chart '%s' version '%s' in the index of %s: %w", cv.Name, cv.Version, at, err)
		}
		if has(ch.Path) {
			return ch, nil
		}
	}
	if f.Offline {
		return nil, notCached(what)
	}
	var tgz []byte
	err = f.reach(hostOf(ch.From), func() (err error) {
		tgz, err = getter.FetchChart(ctx, cv.URLs[0])
		return err
	})
	if err != nil {
		return nil, fetchFailed(what, err)
	}
	got := digestOf(tgz)
	if cv.Digest != "" && got != "sha256:"+strings.TrimPrefix(cv.Digest, "sha256:") {
		return nil, fmt.Errorf("the chart downloaded from %s has digest %s, not %s as the index of %s says", ch.From, got, cv.Digest, at)
	}
	if cv.Digest == "" {
		if err := c.setRef(key, got); err != nil {
			return nil, err
		}
	}
	if ch.Path, err = c.blob(got); err != nil {
		return nil, err
	}
	return ch, write(ch.Path, tgz)
}

// index returns the repository's index: asked for again only if it
// changed since the cached one (or fetched, without one), or the cached
// one when offline (nil when there is none) or when the repository could
// not be reached (stale is then why).
func (f *Fetcher) index(ctx context.Context, getter *helmrepository.Getter, base string) (index []byte, stale error, _ error) {
	c := f.cache()
	p := c.keyed("indexes", base, ".yaml")
	cached, err := read(p)
	if err != nil {
		return nil, nil, err
	}
	if getter == nil {
		return cached, nil, nil
	}
	var known helmrepository.Validators
	if cached != nil {
		if v, _ := read(c.keyed("indexes", base, ".etag")); v != nil {
			known.ETag, known.LastModified, _ = strings.Cut(string(v), "\n")
		}
	}
	var resp *helmrepository.IndexResponse
	err = f.reach(hostOf(base), func() (err error) {
		resp, err = getter.FetchIndex(ctx, known)
		return err
	})
	switch {
	case err != nil && cached != nil && unreachable(err):
		return cached, err, nil
	case err != nil:
		return nil, nil, err
	case resp.NotModified:
		return cached, nil, nil
	}
	if err := write(p, resp.Body); err != nil {
		return nil, nil, err
	}
	if err := write(c.keyed("indexes", base, ".etag"), []byte(resp.Validators.ETag+"\n"+resp.Validators.LastModified)); err != nil {
		return nil, nil, err
	}
	return resp.Body, nil, nil
}

// chartURL is the address of a chart entry's URL, for messages.
func chartURL(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return helmrepository.RedactURL(b.ResolveReference(r).String())
}

// hostOf is the host:port of a URL, or the URL when it does not parse.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// timeout is a source's spec.timeout, or the default.
func timeout(d *metav1.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return defaultTimeout
	}
	return d.Duration
}
