package render

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMemFS(t *testing.T) {
	m := newMemFS()
	for p, data := range map[string]string{
		"/src/my apps/a+b.yaml":   "a",
		"/src/my apps/sub/c.yaml": "c",
		"/src/x..y.yaml":          "x",
	} {
		if err := m.WriteFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteFile("/src/my apps", nil); err == nil {
		t.Error("wrote over a folder")
	}

	if d, f, err := m.CleanedAbs("/src/my apps/../my apps/a+b.yaml"); err != nil || d != "/src/my apps" || f != "a+b.yaml" {
		t.Errorf("CleanedAbs of a file: %q %q %v", d, f, err)
	}
	if d, f, err := m.CleanedAbs("/src/my apps/sub/"); err != nil || d != "/src/my apps/sub" || f != "" {
		t.Errorf("CleanedAbs of a folder: %q %q %v", d, f, err)
	}
	if _, _, err := m.CleanedAbs("/src/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CleanedAbs of nothing: %v", err)
	}

	names, err := m.ReadDir("/src/my apps")
	if want := []string{"a+b.yaml", "sub"}; err != nil || !reflect.DeepEqual(names, want) {
		t.Errorf("ReadDir: %v %v", names, err)
	}
	matches, err := m.Glob("/src/*.yaml")
	if want := []string{"/src/x..y.yaml"}; err != nil || !reflect.DeepEqual(matches, want) {
		t.Errorf("Glob: %v %v", matches, err)
	}

	var walked []string
	err = m.Walk("/src", func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		walked = append(walked, p)
		if info.IsDir() && filepath.Base(p) == "sub" {
			return filepath.SkipDir
		}
		return nil
	})
	want := []string{"/src", "/src/my apps", "/src/my apps/a+b.yaml", "/src/my apps/sub", "/src/x..y.yaml"}
	if err != nil || !reflect.DeepEqual(walked, want) {
		t.Errorf("Walk: %v %v", walked, err)
	}

	f, err := m.Create("/src/new.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "new"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := m.Open("/src/new.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(r); err != nil || string(data) != "new" {
		t.Errorf("Create then Open: %q %v", data, err)
	}
	if fi, err := r.Stat(); err != nil || fi.Size() != 3 || fi.IsDir() {
		t.Errorf("Stat: %v %v", fi, err)
	}

	if err := m.Mkdir("/src/dir"); err != nil || !m.IsDir("/src/dir") {
		t.Errorf("Mkdir: %v", err)
	}
	if err := m.Mkdir("/src/a/b"); err == nil {
		t.Error("Mkdir without a parent")
	}
	if err := m.RemoveAll("/src/my apps"); err != nil {
		t.Fatal(err)
	}
	if m.Exists("/src/my apps/sub/c.yaml") || m.Exists("/src/my apps") || !m.Exists("/src/x..y.yaml") {
		t.Error("RemoveAll removed the wrong things")
	}
}
