// Package gitserver serves Git repositories over HTTP from inside weir, with
// no git binary.
//
// `weir up` uses it to hand a user's working folder to the GitRepository
// reconciler: the folder is committed into an in-memory repository with
// Snapshot, published with Server.Add, and served on the loopback interface
// with Server.Start. The reconciler then clones
// http://127.0.0.1:PORT/<name>.git like any other Git remote, and each new
// Snapshot is a new revision for it to fetch.
//
//	repo := gitserver.NewMemoryRepository()
//	if _, err := gitserver.Snapshot(repo, "main", dir, "weir up"); err != nil {
//		return err
//	}
//	srv := gitserver.New()
//	srv.Add("cluster", repo)
//	url, err := srv.Start(ctx, "127.0.0.1:0") // url + "/cluster.git"
//
// The server speaks Git's smart HTTP protocol, version 0/1, for fetching
// only: ls-remote, clone and fetch work, including shallow ones (a depth in
// commits); pushes are refused. References are listed and full packs built
// by go-git's server (plumbing/transport/server). go-git's server refuses
// shallow requests, so this package chooses the objects of those itself and
// packs them with go-git's pack encoder.
//
// Snapshot takes every file under the folder, honours .gitignore files as
// Git does, and skips .git and .weir folders. A tree equal to the branch's
// tip makes no new commit, so snapshotting on every file change only moves
// the branch when the content moved.
package gitserver
