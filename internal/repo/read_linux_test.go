package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOnlyRegularFilesOfBoundedSizeAreRead checks what the model refuses
// to read: a symlink (it could leave the root), a FIFO (opening it must
// not block), a folder and a file larger than maxFile.
func TestOnlyRegularFilesOfBoundedSizeAreRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	regular := write("regular.yaml", []byte("kind: ConfigMap\n"))
	empty := write("empty.yaml", nil)
	large := write("large.yaml", make([]byte, maxFile+1))
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
		notRegular       bool
	}{
		{name: "a regular file is read", path: regular, want: "kind: ConfigMap\n"},
		{name: "an empty file is read", path: empty},
		{name: "a symlink is refused", path: link, notRegular: true},
		{name: "a FIFO is refused", path: fifo, notRegular: true},
		{name: "a folder is refused", path: dir, notRegular: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := readRegular(c.path)
			if c.notRegular {
				if !errors.Is(err, errNotRegular) {
					t.Fatalf("want it refused as not regular, got %q, %v", b, err)
				}
				return
			}
			if err != nil || string(b) != c.want {
				t.Fatalf("want %q, got %q, %v", c.want, b, err)
			}
		})
	}
	if _, err := readRegular(large); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file larger than %d bytes is read: %v", maxFile, err)
	}
}
