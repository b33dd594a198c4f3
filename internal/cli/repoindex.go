package cli

import (
	"os"
	"path/filepath"

	"github.com/weirhq/weir/internal/repo"
)

// repoIndexEnv names the variable that moves the repository index
// (a folder), or turns it off ("off").
const repoIndexEnv = "WEIR_REPO_INDEX"

// repoIndexDir is the folder of the repository indexes: $WEIR_REPO_INDEX,
// else <user cache dir>/weir/index (such as ~/.cache/weir/index); "" when
// it is off or the user has no cache folder.
func repoIndexDir() string {
	switch v := os.Getenv(repoIndexEnv); v {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "weir", "index")
	default:
		return v
	}
}

// openIndexed opens the repository at root for an offline command, with
// the index of what earlier calls read of it (see repo.Repository.UseIndex).
func openIndexed(root string) (*repo.Repository, error) {
	r, err := repo.Open(root)
	if err != nil {
		return nil, err
	}
	if dir := repoIndexDir(); dir != "" {
		r.UseIndex(dir)
	}
	return r, nil
}

// saveIndex writes the repository's index for the next call. The index
// only saves time: a folder that cannot be written leaves the next call
// reading the files, as this one did, so its error is not the command's.
func saveIndex(r *repo.Repository) { _ = r.SaveIndex() }
