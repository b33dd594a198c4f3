package artifact

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Handler serves the store's files read-only over HTTP, at the paths of
// meta.Artifact.Path: GET /gitrepository/flux-system/podinfo/<sha256>.tar.gz.
//
// Only GET and HEAD are answered (405 otherwise). Paths with ".." elements
// get 400; folders, temporary files, symlinks leading out of Root and missing
// files get 404, with no listing and nothing that tells them apart. Range and
// conditional requests work as with http.ServeContent.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			http.Error(w, "invalid path", http.StatusBadRequest)
			return
		}
	}
	// fs.ValidPath refuses empty elements, "." and a trailing slash, so a
	// folder can only be asked for by its bare name, which fails below.
	// Names starting with a dot are the store's temporary files.
	if !fs.ValidPath(name) || name == "." || strings.HasPrefix(name, ".") || strings.Contains(name, "/.") {
		http.NotFound(w, r)
		return
	}

	// os.Root keeps a symlink planted in the store from serving a file
	// outside it.
	root, err := os.OpenRoot(s.Root)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}

	w.Header().Set("X-Content-Type-Options", "nosniff")
	if strings.HasSuffix(name, artifactExt) {
		w.Header().Set("Content-Type", "application/gzip")
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}
