package cli

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The checked-in reference is what the commands say today: a flag or
// command changed without `make clidocs` fails here.
func TestReferenceIsUpToDate(t *testing.T) {
	const checkedIn = "../../docs/reference"
	fresh := t.TempDir()
	if err := WriteReference(fresh); err != nil {
		t.Fatal(err)
	}

	want, got := pages(t, fresh), pages(t, checkedIn)
	if !slices.Equal(pageNames(want), pageNames(got)) {
		t.Fatalf("docs/reference is stale: run 'make clidocs' and commit\nthe commands make %v\ndocs/reference has %v", pageNames(want), pageNames(got))
	}
	for name, page := range want {
		if got[name] != page {
			t.Errorf("docs/reference/%s is stale: run 'make clidocs' and commit", name)
		}
	}
}

// pages reads the markdown pages of dir by name.
func pages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(f)] = string(b)
	}
	return m
}

func pageNames(pages map[string]string) []string {
	var n []string
	for name := range pages {
		n = append(n, name)
	}
	slices.Sort(n)
	return n
}

func TestWriteReferenceRemovesPagesOfGoneCommands(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(dir, "weir_frobnicate.md")
	if err := os.WriteFile(gone, []byte("# weir frobnicate\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := WriteReference(dir); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the page of a command that is gone is still there: %v", err)
	}
	for _, page := range []string{"weir.md", "weir_get_all.md", "weir_delete_source_git.md", "weir_export_kustomization.md", "weir_stats.md", "weir_completion_bash.md"} {
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			t.Errorf("no page %s: %v", page, err)
		}
	}
}
