package gitrepository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// defaultBranch is Flux's branch when spec.ref is empty.
const defaultBranch = "master"

// target is a ref resolved against the remote: what to fetch and the
// revision string it will have, in Flux's format (main@sha1:<hex>).
type target struct {
	// refName is the full ref to clone; empty for a bare commit.
	refName plumbing.ReferenceName
	// label is the part before '@' in the revision (branch, tag, ref name).
	label string
	// hash is the commit, zero when the remote could not tell.
	hash plumbing.Hash
	// full asks for a full clone, needed to check out a given commit.
	full bool
}

// revision formats the target the way source-controller does.
func (t target) revision() string {
	if t.label == "" {
		return "sha1:" + t.hash.String()
	}
	return t.label + "@sha1:" + t.hash.String()
}

// resolve asks the remote for its refs (no objects are fetched) and finds the
// commit the spec's ref points at. For a bare commit ref it asks nothing.
func resolve(ctx context.Context, r *remote, ref *sourcev1.GitRepositoryRef) (target, error) {
	if ref == nil {
		ref = &sourcev1.GitRepositoryRef{Branch: defaultBranch}
	}
	if ref.Commit != "" {
		t := target{hash: plumbing.NewHash(ref.Commit), full: true}
		if !plumbing.IsHash(ref.Commit) {
			return target{}, fmt.Errorf("commit %q is not a full 40-character SHA-1", ref.Commit)
		}
		if ref.Branch != "" {
			t.refName, t.label = plumbing.NewBranchReferenceName(ref.Branch), ref.Branch
		}
		return t, nil
	}
	refs, err := listRefs(ctx, r)
	if err != nil {
		return target{}, err
	}
	switch {
	case ref.Name != "":
		name := plumbing.ReferenceName(ref.Name)
		h, ok := lookup(refs, name)
		if !ok {
			return target{}, fmt.Errorf("unable to resolve ref '%s': the remote has no such reference", ref.Name)
		}
		return target{refName: name, label: ref.Name, hash: h}, nil
	case ref.SemVer != "":
		return resolveSemver(refs, ref.SemVer)
	case ref.Tag != "":
		name := plumbing.NewTagReferenceName(ref.Tag)
		h, ok := lookup(refs, name)
		if !ok {
			return target{}, fmt.Errorf("unable to resolve tag '%s': the remote has no such tag", ref.Tag)
		}
		return target{refName: name, label: ref.Tag, hash: h}, nil
	default:
		branch := ref.Branch
		if branch == "" {
			branch = defaultBranch
		}
		name := plumbing.NewBranchReferenceName(branch)
		h, ok := lookup(refs, name)
		if !ok {
			return target{}, fmt.Errorf("unable to resolve branch '%s': the remote has no such branch", branch)
		}
		return target{refName: name, label: branch, hash: h}, nil
	}
}

// listRefs is `git ls-remote`: the remote's refs with annotated tags peeled.
func listRefs(ctx context.Context, r *remote) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	list, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.caBundle, ProxyOptions: r.proxy, PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, fmt.Errorf("failed to list references of '%s': %w", r.url, describe(ctx, err))
	}
	refs := make(map[plumbing.ReferenceName]plumbing.Hash, len(list))
	for _, ref := range list {
		if ref.Type() == plumbing.HashReference {
			refs[ref.Name()] = ref.Hash()
		}
	}
	return refs, nil
}

// lookup returns the commit a ref names, through the peeled entry of an
// annotated tag when there is one.
func lookup(refs map[plumbing.ReferenceName]plumbing.Hash, name plumbing.ReferenceName) (plumbing.Hash, bool) {
	if h, ok := refs[plumbing.ReferenceName(string(name)+"^{}")]; ok {
		return h, true
	}
	h, ok := refs[name]
	return h, ok
}

// resolveSemver picks the highest tag that satisfies the constraint.
func resolveSemver(refs map[plumbing.ReferenceName]plumbing.Hash, constraint string) (target, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return target{}, fmt.Errorf("semver constraint '%s' is invalid: %w", constraint, err)
	}
	type candidate struct {
		tag string
		v   *semver.Version
	}
	var matches []candidate
	for name := range refs {
		if !name.IsTag() || strings.HasSuffix(string(name), "^{}") {
			continue
		}
		tag := name.Short()
		v, err := semver.NewVersion(tag)
		if err != nil || !c.Check(v) {
			continue
		}
		matches = append(matches, candidate{tag, v})
	}
	if len(matches) == 0 {
		return target{}, fmt.Errorf("no tag matches semver constraint '%s'", constraint)
	}
	sort.Slice(matches, func(i, j int) bool {
		if matches[i].v.Equal(matches[j].v) {
			return matches[i].tag > matches[j].tag
		}
		return matches[i].v.GreaterThan(matches[j].v)
	})
	best := matches[0]
	name := plumbing.NewTagReferenceName(best.tag)
	h, _ := lookup(refs, name)
	return target{refName: name, label: best.tag, hash: h}, nil
}

// tree is what the spec asks of the work tree besides the commit.
type tree struct {
	// sparse are the folders to check out (spec.sparseCheckout, cleaned);
	// empty means the whole tree.
	sparse []string
	// submodules asks for the submodules too (spec.recurseSubmodules).
	submodules bool
}

// checkout fetches the target into dir, shallow unless a commit must be
// found in history, checks out the tree asked for and returns the commit.
func checkout(ctx context.Context, r *remote, t target, dir string, tr tree) (*git.Repository, *object.Commit, error) {
	var repo *git.Repository
	var commit *object.Commit
	var err error
	if t.full {
		repo, commit, err = checkoutCommit(ctx, r, t, dir, tr)
	} else {
		repo, commit, err = cloneRef(ctx, r, t, dir, tr)
	}
	if err != nil {
		return nil, nil, err
	}
	if tr.submodules {
		if err := fetchSubmodules(ctx, repo, r, r.url, submoduleDepth, tr.sparse); err != nil {
			return nil, nil, fmt.Errorf("failed to checkout and determine revision: %w", err)
		}
	}
	return repo, commit, nil
}

// cloneRef clones the target's ref alone, one commit deep.
func cloneRef(ctx context.Context, r *remote, t target, dir string, tr tree) (*git.Repository, *object.Commit, error) {
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL:           r.url,
		Auth:          r.auth,
		CABundle:      r.caBundle,
		ProxyOptions:  r.proxy,
		ReferenceName: t.refName,
		SingleBranch:  true,
		Depth:         1,
		Tags:          git.NoTags,
		NoCheckout:    len(tr.sparse) > 0,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to checkout and determine revision: unable to clone '%s': %w", r.url, describe(ctx, err))
	}
	head, err := repo.Head()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the cloned head: %w", err)
	}
	if len(tr.sparse) > 0 {
		if err := checkoutTree(repo, head.Hash(), tr); err != nil {
			return nil, nil, err
		}
	}
	commit, err := repo.CommitObject(head.Hash())
	return repo, commit, err
}

// checkoutTree writes the commit's tree, or only its sparse folders, to
// the work folder.
func checkoutTree(repo *git.Repository, h plumbing.Hash, tr tree) error {
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("opening the work tree: %w", err)
	}
	var dirs []string
	for _, d := range tr.sparse {
		// go-git keeps every path that starts with the string given: with
		// the slash, "app" does not take "apps/" along.
		dirs = append(dirs, d+"/")
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: h, Force: true, SparseCheckoutDirectories: dirs}); err != nil {
		return fmt.Errorf("checking out commit '%s': %w", h, err)
	}
	return nil
}

// checkoutCommit fetches the history of the target's branch (or of every
// branch and tag when none is given) and checks out the target's commit.
func checkoutCommit(ctx context.Context, r *remote, t target, dir string, tr tree) (*git.Repository, *object.Commit, error) {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return nil, nil, fmt.Errorf("initialising the work folder: %w", err)
	}
	specs := []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
	if t.refName != "" {
		specs = []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:refs/remotes/origin/%s", t.refName, t.refName.Short()))}
	}
	rem, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.url}, Fetch: specs})
	if err != nil {
		return nil, nil, fmt.Errorf("configuring the remote: %w", err)
	}
	err = rem.FetchContext(ctx, &git.FetchOptions{Auth: r.auth, CABundle: r.caBundle, ProxyOptions: r.proxy, RefSpecs: specs, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, nil, fmt.Errorf("failed to checkout and determine revision: unable to fetch '%s': %w", r.url, describe(ctx, err))
	}
	commit, err := repo.CommitObject(t.hash)
	if err != nil {
		where := "the repository"
		if t.label != "" {
			where = "branch '" + t.label + "'"
		}
		return nil, nil, fmt.Errorf("commit '%s' not found in %s of '%s'", t.hash, where, r.url)
	}
	if err := checkoutTree(repo, t.hash, tr); err != nil {
		return nil, nil, err
	}
	return repo, commit, nil
}

// describe turns go-git's and the network's errors into what a user can act
// on; a deadline names the timeout instead of a bare "context canceled".
func describe(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out (raise spec.timeout if the remote is slow): %w", err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("authentication failed, check the credentials in secretRef: %w", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("repository not found: %w", err)
	}
	return err
}
