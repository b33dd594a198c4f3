package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
)

// Download fetches a source's artifact from its URL, as a consumer would,
// and fails the test unless its digest and size are the ones the status
// gives.
func Download(t testing.TB, a *meta.Artifact) []byte {
	t.Helper()
	resp, err := http.Get(a.URL)
	if err != nil {
		t.Fatalf("downloading the artifact: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading the artifact %s: %s", a.URL, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(body)); got != a.Digest {
		t.Fatalf("artifact digest is %s, status says %s", got, a.Digest)
	}
	if a.Size == nil || *a.Size != int64(len(body)) {
		t.Fatalf("artifact size is %d, status says %v", len(body), a.Size)
	}
	return body
}

// TarFiles returns the regular files of a tar.gz, name to content.
func TarFiles(t testing.TB, tgz []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		}
	}
}
