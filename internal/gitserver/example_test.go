package gitserver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/weirhq/weir/internal/gitserver"
)

// A working folder is served as a Git repository, and any Git client can
// list and clone it.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir, err := os.MkdirTemp("", "cluster")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: []\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	repo := gitserver.NewMemoryRepository()
	head, err := gitserver.Snapshot(repo, "main", dir, "weir up")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := gitserver.New()
	srv.Add("cluster", repo)
	base, err := srv.Start(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}

	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{
		Name: "origin",
		URLs: []string{base + "/cluster.git"},
	})
	refs, err := remote.ListContext(ctx, &git.ListOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var lines []string
	for _, ref := range refs {
		switch {
		case ref.Hash() == head:
			lines = append(lines, ref.Name().String()+" at the snapshot")
		default:
			lines = append(lines, ref.String())
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// ref: refs/heads/main HEAD
	// refs/heads/main at the snapshot
}
