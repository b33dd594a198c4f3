package artifact

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// get sends method to the raw path (not cleaned by the client) and returns
// the status and body.
func get(t *testing.T, method, base, rawPath string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+rawPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHandler(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "kind: Deployment\n"})
	a := archive(t, s, podinfo, dir)
	want, err := os.ReadFile(s.Path(a))
	if err != nil {
		t.Fatal(err)
	}

	// A file next to the store that no request may reach.
	secret := filepath.Join(filepath.Dir(s.Root), "secret.txt")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Dir(s.Path(a))
	if err := os.Symlink(secret, filepath.Join(folder, "leak.tar.gz")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, ".archive-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	t.Run("GET serves the artifact", func(t *testing.T) {
		code, hdr, body := get(t, http.MethodGet, srv.URL, "/"+a.Path)
		if code != http.StatusOK || body != string(want) {
			t.Fatalf("GET %s = %d with %d bytes, want 200 with the artifact's %d bytes", a.Path, code, len(body), len(want))
		}
		if ct := hdr.Get("Content-Type"); ct != "application/gzip" {
			t.Errorf("Content-Type = %q", ct)
		}
	})
	t.Run("the artifact's URL serves it", func(t *testing.T) {
		s2 := *s
		s2.BaseURL = srv.URL
		resp, err := http.Get(s2.url(a.Path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", s2.url(a.Path), resp.StatusCode)
		}
	})
	t.Run("HEAD gives the size without the body", func(t *testing.T) {
		code, hdr, body := get(t, http.MethodHead, srv.URL, "/"+a.Path)
		if code != http.StatusOK || body != "" || hdr.Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("HEAD = %d, Content-Length %q, body %d bytes", code, hdr.Get("Content-Length"), len(body))
		}
	})

	refused := []struct {
		name, method, path string
		code               int
	}{
		{"a missing artifact", http.MethodGet, "/gitrepository/flux-system/podinfo/missing.tar.gz", http.StatusNotFound},
		{"../ out of the store", http.MethodGet, "/../secret.txt", http.StatusBadRequest},
		{"../ inside a path", http.MethodGet, "/gitrepository/../../secret.txt", http.StatusBadRequest},
		{"encoded ../", http.MethodGet, "/%2e%2e/secret.txt", http.StatusBadRequest},
		{"encoded slashes", http.MethodGet, "/..%2fsecret.txt", http.StatusBadRequest},
		{"the root folder", http.MethodGet, "/", http.StatusNotFound},
		{"a folder", http.MethodGet, "/gitrepository/flux-system/podinfo/", http.StatusNotFound},
		{"a folder without slash", http.MethodGet, "/gitrepository/flux-system/podinfo", http.StatusNotFound},
		{"a symlink out of the store", http.MethodGet, "/gitrepository/flux-system/podinfo/leak.tar.gz", http.StatusNotFound},
		{"a temporary file", http.MethodGet, "/gitrepository/flux-system/podinfo/.archive-123", http.StatusNotFound},
		{"POST", http.MethodPost, "/" + a.Path, http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, "/" + a.Path, http.StatusMethodNotAllowed},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := get(t, tt.method, srv.URL, tt.path)
			if code != tt.code {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, code, tt.code)
			}
			if strings.Contains(body, "host secret") || strings.Contains(body, ".tar.gz") || strings.Contains(body, "podinfo") {
				t.Errorf("%s %s answered %q", tt.method, tt.path, body)
			}
		})
	}

	if _, err := os.Stat(s.Path(a)); err != nil {
		t.Errorf("the artifact is gone after the requests: %v", err)
	}
}
