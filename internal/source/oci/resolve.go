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

// reference turns spec.ref into a reference to pull (see Reference),
// wording a failure to list the tags for the user.
func (g *registry) reference(ctx context.Context, ref *sourcev1.OCIRepositoryRef) (name.Reference, error) {
	r, err := Reference(g.repo, ref, g.options(ctx)...)
	var inv *invalidRefError
	if err != nil && !errors.As(err, &inv) {
		return nil, g.describe(ctx, err, nil)
	}
	return r, err
}

// Reference turns an OCIRepository's spec.ref into a reference to pull in
// repo, listing the repository's tags with opts for a semver range.
// Precedence is Flux's: digest, then semver, then tag, then "latest". Only
// a semver range makes a request.
func Reference(repo name.Repository, ref *sourcev1.OCIRepositoryRef, opts ...remote.Option) (name.Reference, error) {
	if ref == nil {
		ref = &sourcev1.OCIRepositoryRef{}
	}
	switch {
	case ref.Digest != "":
		d, err := name.NewDigest(repo.String() + "@" + ref.Digest)
		if err != nil {
			return nil, &invalidRefError{fmt.Errorf("digest '%s' is not a valid sha256:<hex> digest", ref.Digest)}
		}
		return d, nil
	case ref.SemVer != "":
		if _, _, err := semverFilter(ref.SemVer, ref.SemverFilter); err != nil {
			return nil, err
		}
		tags, err := remote.List(repo, opts...)
		if err != nil {
			return nil, err
		}
		tag, err := HighestTag(tags, ref.SemVer, ref.SemverFilter)
		if err != nil {
			return nil, err
		}
		return repo.Tag(tag), nil
	case ref.Tag != "":
		t, err := name.NewTag(repo.String() + ":" + ref.Tag)
		if err != nil {
			return nil, &invalidRefError{fmt.Errorf("tag '%s' is not a valid tag: %w", ref.Tag, err)}
		}
		return t, nil
	default:
		return repo.Tag(name.DefaultTag), nil
	}
}

// semverFilter parses spec.ref.semver and spec.ref.semverFilter.
func semverFilter(rng, filter string) (*semver.Constraints, *regexp.Regexp, error) {
	constraint, err := semver.NewConstraint(rng)
	if err != nil {
		return nil, nil, &invalidRefError{fmt.Errorf("semver '%s' parse error: %w", rng, err)}
	}
	var match *regexp.Regexp
	if filter != "" {
		if match, err = regexp.Compile(filter); err != nil {
			return nil, nil, &invalidRefError{fmt.Errorf("semverFilter '%s' is not a regular expression: %w", filter, err)}
		}
	}
	return constraint, match, nil
}

// HighestTag picks among tags the highest version within rng (a semver
// range), among those matching filter (a regular expression) when one is
// given, as source-controller does for spec.ref.semver.
func HighestTag(tags []string, rng, filter string) (string, error) {
	constraint, match, err := semverFilter(rng, filter)
	if err != nil {
		return "", err
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
			return "", fmt.Errorf("no match found for semver: %s with semverFilter '%s'", rng, filter)
		}
		return "", fmt.Errorf("no match found for semver: %s", rng)
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	return versions[0].Original(), nil
}

// parseVersion accepts strict semantic versions, with or without a leading
// "v", as Flux does: "1.2" or "latest" are not versions.
func parseVersion(tag string) (*semver.Version, error) {
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v")); err != nil {
		return nil, err
	}
	return semver.NewVersion(tag)
}

// resolve finds the manifest digest of ref (see ResolveTag). A digest ref
// needs no request.
func (g *registry) resolve(ctx context.Context, ref name.Reference) (target, error) {
	switch ref := ref.(type) {
	case name.Digest:
		h, err := v1.NewHash(ref.DigestStr())
		if err != nil {
			return target{}, &invalidRefError{fmt.Errorf("digest '%s' is not a valid sha256:<hex> digest", ref.DigestStr())}
		}
		return target{digest: h}, nil
	case name.Tag:
		h, err := ResolveTag(ref, g.options(ctx)...)
		if err != nil {
			return target{}, g.describe(ctx, err, ref)
		}
		return target{tag: ref.TagStr(), digest: h}, nil
	default:
		return target{}, fmt.Errorf("unsupported reference type %T", ref)
	}
}

// ResolveTag finds the manifest digest a tag points to: one HEAD request,
// and a GET only when the registry does not answer HEAD properly.
func ResolveTag(ref name.Tag, opts ...remote.Option) (v1.Hash, error) {
	desc, err := remote.Head(ref, opts...)
	if err == nil {
		return desc.Digest, nil
	}
	if !headIsEnough(err) {
		d, getErr := remote.Get(ref, opts...)
		if getErr == nil {
			return d.Digest, nil
		}
		err = getErr
	}
	return v1.Hash{}, err
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
