package gitrepository

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// submoduleDepth is how deep submodules of submodules are followed, as
// go-git's DefaultSubmoduleRecursionDepth that Flux uses.
const submoduleDepth = 10

// fetchSubmodules checks out every submodule of the work tree at the commit
// the tree records, and their submodules in turn, as `git submodule update
// --init --recursive` does. Relative URLs ("../common.git") resolve against
// the parent's URL, as in git.
//
// The parent's credentials go only to submodules on the parent's own host:
// a .gitmodules file, which anyone who can push writes, must not be able
// to send the Secret to another server. The CA bundle and the proxy apply
// to every submodule. Only http(s) and ssh URLs are fetched: a local path
// or file:// URL would read the controller's own disk.
//
// With sparse folders, only the submodules inside them are fetched.
func fetchSubmodules(ctx context.Context, repo *git.Repository, r *remote, parentURL string, depth int, sparse []string) error {
	if depth == 0 {
		return nil
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("opening the work tree: %w", err)
	}
	subs, err := wt.Submodules()
	if err != nil {
		return fmt.Errorf("reading .gitmodules: %w", err)
	}
	for _, sub := range subs {
		if !inFolders(sub.Config().Path, sparse) {
			continue
		}
		if err := fetchSubmodule(ctx, wt.Filesystem.Root(), sub, r, parentURL, depth); err != nil {
			return fmt.Errorf("submodule '%s': %w", sub.Config().Name, err)
		}
	}
	return nil
}

func fetchSubmodule(ctx context.Context, root string, sub *git.Submodule, r *remote, parentURL string, depth int) error {
	if err := sub.Init(); err != nil && !errors.Is(err, git.ErrSubmoduleAlreadyInitialized) {
		return err
	}
	status, err := sub.Status()
	if err != nil {
		return fmt.Errorf("reading its commit: %w", err)
	}
	if status.Expected.IsZero() {
		// In .gitmodules but not in the tree: git passes it over too.
		return nil
	}
	if err := noLinkOnPath(root, sub.Config().Path); err != nil {
		return err
	}
	subRepo, err := sub.Repository()
	if err != nil {
		return fmt.Errorf("preparing its repository: %w", err)
	}
	origin, err := subRepo.Remote(git.DefaultRemoteName)
	if err != nil {
		return fmt.Errorf("resolving its URL: %w", err)
	}
	subURL := origin.Config().URLs[0]
	auth, err := submoduleAuth(r, parentURL, subURL)
	if err != nil {
		return err
	}
	opts := &git.FetchOptions{Auth: auth, CABundle: r.caBundle, ProxyOptions: r.proxy, Tags: git.NoTags}
	if err := subRepo.FetchContext(ctx, opts); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if auth == nil && r.auth != nil && errors.Is(err, transport.ErrAuthenticationRequired) {
			return fmt.Errorf("unable to fetch '%s': authentication required, and the credentials of secretRef are sent only to the parent repository's host: %w", redactURL(subURL), err)
		}
		return fmt.Errorf("unable to fetch '%s': %w", redactURL(subURL), describe(ctx, err))
	}
	if _, err := subRepo.CommitObject(status.Expected); err != nil {
		// A commit no branch holds: servers that allow it send it by hash.
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + status.Expected.String() + ":" + status.Expected.String())}
		if err := subRepo.FetchContext(ctx, opts); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return fmt.Errorf("commit '%s' not found in '%s': %w", status.Expected, redactURL(subURL), describe(ctx, err))
		}
	}
	subWT, err := subRepo.Worktree()
	if err != nil {
		return err
	}
	if err := subWT.Checkout(&git.CheckoutOptions{Hash: status.Expected, Force: true}); err != nil {
		return fmt.Errorf("checking out commit '%s': %w", status.Expected, err)
	}
	if err := subRepo.Storer.SetReference(plumbing.NewHashReference(plumbing.HEAD, status.Expected)); err != nil {
		return err
	}
	if err := fetchSubmodules(ctx, subRepo, r, subURL, depth-1, nil); err != nil {
		return err
	}
	// go-git links the submodule's folder to its repository with a .git
	// file; it is not part of the source.
	link := filepath.Join(root, filepath.FromSlash(sub.Config().Path), ".git")
	if fi, err := os.Lstat(link); err == nil && fi.Mode().IsRegular() {
		return os.Remove(link)
	}
	return nil
}

// submoduleAuth returns the parent's credentials for a submodule on the
// parent's host, none for another host, and refuses URLs that are not
// http(s) or ssh.
func submoduleAuth(r *remote, parentURL, subURL string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(subURL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL '%s': %w", redactURL(subURL), err)
	}
	switch ep.Protocol {
	case "http", "https", "ssh":
	default:
		return nil, fmt.Errorf("URL '%s' is not http(s) or ssh; weir does not fetch submodules from %s URLs", redactURL(subURL), ep.Protocol)
	}
	parent, err := transport.NewEndpoint(parentURL)
	if err != nil {
		return nil, err
	}
	if parent.Protocol != ep.Protocol || parent.Host != ep.Host || parent.Port != ep.Port {
		return nil, nil
	}
	return r.auth, nil
}

// redactURL hides a password written into a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// inFolders reports whether the slash-separated path is inside one of the
// folders; no folders means the whole tree.
func inFolders(p string, folders []string) bool {
	if len(folders) == 0 {
		return true
	}
	for _, f := range folders {
		if p == f || strings.HasPrefix(p, f+"/") {
			return true
		}
	}
	return false
}

// noLinkOnPath refuses a submodule path that goes through a symlink of the
// tree, which could lead the checkout out of the work folder.
func noLinkOnPath(root, p string) error {
	cur := root
	for _, part := range strings.Split(p, "/") {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("its path '%s' goes through a symlink", p)
		}
	}
	return nil
}
