package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// target is a ref resolved against the registry: the manifest to pull and
// the revision it gives, in Flux's format (<tag>@sha256:<hex>).
type target struct {
	// tag is empty for a digest ref.
	tag    string
	digest v1.Hash
}

// revision formats the target the way source-controller does.
func (t target) revision() string {
	if t.tag == "" {
		return t.digest.String()
	}
	return t.tag + "@" + t.digest.String()
}

// invalidRefError marks a ref that no registry content can satisfy (an
// invalid digest, semver range or filter): only a spec change helps.
type invalidRefError struct{ err error }

func (e *invalidRefError) Error() string { return e.err.Error() }
func (e *invalidRefError) Unwrap() error { return e.err }

// reference turns spec.ref into a reference to pull, listing the
// repository's tags for a semver range. Precedence is Flux's: digest, then
// semver, then tag, then "latest".
func (g *registry) reference(ctx context.Context, ref *sourcev1.OCIRepositoryRef) (name.Reference, error) {
	if ref == nil {
		ref = &sourcev1.OCIRepositoryRef{}
	}
	switch {
	case ref.Digest != "":
		d, err := name.NewDigest(g.repo.String() + "@" + ref.Digest)
		if err != nil {
			return nil, &invalidRefError{fmt.Errorf("digest '%s' is not a valid sha256:<hex> digest", ref.Digest)}
		}
		return d, nil
	case ref.SemVer != "":
		return g.highestTag(ctx, ref.SemVer, ref.SemverFilter)
	case ref.Tag != "":
		t, err := name.NewTag(g.repo.String() + ":" + ref.Tag)
		if err != nil {
			return nil, &invalidRefError{fmt.Errorf("tag '%s' is not a valid tag: %w", ref.Tag, err)}
		}
		return t, nil
	default:
		return g.repo.Tag(name.DefaultTag), nil
	}
}

// highestTag lists the repository's tags and picks the highest version
// within the range, among those matching filter (a regular expression)
// when one is given.
func (g *registry) highestTag(ctx context.Context, rng, filter string) (name.Reference, error) {
	constraint, err := semver.NewConstraint(rng)
	if err != nil {
		return nil, &invalidRefError{fmt.Errorf("semver '%s' parse error: %w", rng, err)}
	}
	var match *regexp.Regexp
	if filter != "" {
		if match, err = regexp.Compile(filter); err != nil {
			return nil, &invalidRefError{fmt.Errorf("semverFilter '%s' is not a regular expression: %w", filter, err)}
		}
	}
	tags, err := remote.List(g.repo, g.options(ctx)...)
	if err != nil {
		return nil, g.describe(ctx, err, nil)
	}
	var versions []*semver.Version
	for _, tag := range tags {
		if match != nil && !match.MatchString(tag) {
			continue
		}
		v, err := parseVersion(tag)
		if err != nil || !constraint.Check(v) {
			continue
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		if filter != "" {
			return nil, fmt.Errorf("no match found for semver: %s with semverFilter '%s'", rng, filter)
		}
		return nil, fmt.Errorf("no match found for semver: %s", rng)
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	return g.repo.Tag(versions[0].Original()), nil
}

// parseVersion accepts strict semantic versions, with or without a leading
// "v", as Flux does: "1.2" or "latest" are not versions.
func parseVersion(tag string) (*semver.Version, error) {
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v")); err != nil {
		return nil, err
	}
	return semver.NewVersion(tag)
}

// resolve finds the manifest digest of ref. A digest ref needs no request;
// a tag costs one HEAD request, and a GET only when the registry does not
// answer HEAD properly.
func (g *registry) resolve(ctx context.Context, ref name.Reference) (target, error) {
	switch ref := ref.(type) {
	case name.Digest:
		h, err := v1.NewHash(ref.DigestStr())
		if err != nil {
			return target{}, &invalidRefError{fmt.Errorf("digest '%s' is not a valid sha256:<hex> digest", ref.DigestStr())}
		}
		return target{digest: h}, nil
	case name.Tag:
		desc, err := remote.Head(ref, g.options(ctx)...)
		if err == nil {
			return target{tag: ref.TagStr(), digest: desc.Digest}, nil
		}
		if !headIsEnough(err) {
			d, getErr := remote.Get(ref, g.options(ctx)...)
			if getErr == nil {
				return target{tag: ref.TagStr(), digest: d.Digest}, nil
			}
			err = getErr
		}
		return target{}, g.describe(ctx, err, ref)
	default:
		return target{}, fmt.Errorf("unsupported reference type %T", ref)
	}
}

// headIsEnough says whether a failed HEAD already tells the whole story:
// a GET would fail the same way for a missing tag, refused credentials or
// an unreachable registry. Other answers (405, 5xx from a proxy that does
// not know HEAD) are retried with GET, as source-controller does.
func headIsEnough(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return true
	}
	switch terr.StatusCode {
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}
