package artifact

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr(s string) *string { return &s }

func TestIgnoreRules(t *testing.T) {
	tree := map[string]string{
		".git/config":                  "[core]\n",
		".gitignore":                   "*.log\n",
		".github/workflows/ci.yaml":    "on: push\n",
		"logo.png":                     "png",
		"README.md":                    "# podinfo\n",
		"deploy/app.yaml":              "kind: Deployment\n",
		"deploy/secret.yaml":           "kind: Secret\n",
		"secret.yaml":                  "kind: Secret\n",
		"charts/podinfo/Chart.yaml":    "name: podinfo\n",
		"charts/podinfo/chart.tar.gz":  "tgz",
		"charts/podinfo/templates/a.t": "{{ . }}\n",
	}
	tests := []struct {
		name    string
		ignores map[string]string // .sourceignore files to add
		spec    *string
		in, out []string
	}{
		{
			name: "Flux's defaults without any rule",
			in:   []string{"README.md", "deploy/app.yaml", "deploy/secret.yaml", "secret.yaml", "charts/podinfo/Chart.yaml"},
			out:  []string{".git/config", ".gitignore", ".github/workflows/ci.yaml", "logo.png", "charts/podinfo/chart.tar.gz"},
		},
		{
			name:    "a .sourceignore applies to its own folder and below",
			ignores: map[string]string{"deploy/.sourceignore": "# secrets are sealed elsewhere\nsecret.yaml\n"},
			in:      []string{"deploy/app.yaml", "secret.yaml", "deploy/.sourceignore"},
			out:     []string{"deploy/secret.yaml", ".git/config", ".gitignore"},
		},
		{
			name:    "a deeper .sourceignore overrules a higher one",
			ignores: map[string]string{".sourceignore": "*.yaml\n", "deploy/.sourceignore": "!app.yaml\n"},
			in:      []string{"deploy/app.yaml", "README.md"},
			out:     []string{"deploy/secret.yaml", "secret.yaml", "charts/podinfo/Chart.yaml"},
		},
		{
			name: "spec.ignore replaces the defaults but not the VCS exclusions",
			spec: ptr("/charts/\n*.md\n"),
			in:   []string{"logo.png", ".github/workflows/ci.yaml", "deploy/app.yaml"},
			out:  []string{"README.md", "charts/podinfo/Chart.yaml", "charts/podinfo/templates/a.t", ".git/config", ".gitignore"},
		},
		{
			name:    "spec.ignore overrules .sourceignore files",
			ignores: map[string]string{".sourceignore": "deploy/\n"},
			spec:    ptr("!deploy/app.yaml\n"),
			in:      []string{"deploy/app.yaml"},
			out:     []string{"deploy/secret.yaml", ".git/config"},
		},
		{
			name: "spec.ignore can exclude everything but a folder",
			spec: ptr("/*\n!/deploy\n"),
			in:   []string{"deploy/app.yaml", "deploy/secret.yaml"},
			out:  []string{"README.md", "secret.yaml", "charts/podinfo/Chart.yaml", ".git/config"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			dir := t.TempDir()
			writeTree(t, dir, tree)
			writeTree(t, dir, tt.ignores)
			ignore, err := NewIgnore(dir, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			a, err := s.Archive(context.Background(), podinfo, "r", dir, ignore)
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := readArchive(t, s.Path(a))
			for _, name := range tt.in {
				if _, ok := entries[name]; !ok {
					t.Errorf("%s is missing from the artifact", name)
				}
			}
			for _, name := range tt.out {
				if _, ok := entries[name]; ok {
					t.Errorf("%s is in the artifact, want it excluded", name)
				}
			}
		})
	}
}

func TestArchiveEntriesAreNormalised(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"b/z.yaml":   "z",
		"a.yaml":     "a",
		"b-c/y.yaml": "y",
		"run.sh":     "#!/bin/sh\n",
	})
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := archive(t, s, podinfo, dir)
	entries, order := readArchive(t, s.Path(a))

	if !slices.IsSorted(order) {
		t.Errorf("entries are not sorted: %v", order)
	}
	if want := []string{"a.yaml", "b-c/y.yaml", "b/z.yaml", "run.sh"}; !slices.Equal(order, want) {
		t.Errorf("entries = %v, want files only: %v", order, want)
	}
	for name, e := range entries {
		h := e.hdr
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s carries time %v, owner %d:%d %q:%q; want none", name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
	}
	if m := entries["a.yaml"].hdr.Mode; m != 0o644 {
		t.Errorf("a.yaml has mode %o, want 644", m)
	}
	if m := entries["run.sh"].hdr.Mode; m != 0o755 {
		t.Errorf("run.sh has mode %o, want 755", m)
	}
	if c := entries["b/z.yaml"].content; c != "z" {
		t.Errorf("b/z.yaml holds %q", c)
	}
}

func TestArchiveSizeLimit(t *testing.T) {
	s := newStore(t)
	s.MaxSize = 10 << 10
	dir := t.TempDir()
	random := make([]byte, 64<<10) // does not compress
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"blob.bin": string(random)})

	_, err := s.Archive(context.Background(), podinfo, "r", dir, Ignore{})
	if err == nil {
		t.Fatal("a 64 KiB artifact was accepted under a 10 KiB limit")
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %q does not match ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "artifact is 64.") || !strings.Contains(err.Error(), "KiB, over the 10 KiB limit set by --artifact-max-size") {
		t.Errorf("error %q does not give the size and the limit", err)
	}
	if !strings.Contains(err.Error(), "largest files: blob.bin (64 KiB)") || !strings.Contains(err.Error(), "spec.ignore") {
		t.Errorf("error %q does not name the largest file and spec.ignore", err)
	}
	if files := artifactFiles(t, s, podinfo); len(files) != 0 {
		t.Errorf("a refused artifact left %v in the store", files)
	}

	s.MaxSize = 1 << 20
	if _, err := s.Archive(context.Background(), podinfo, "r", dir, Ignore{}); err != nil {
		t.Errorf("under a 1 MiB limit: %v", err)
	}
}

// One large file in a repository fails its artifact, naming the file and
// spec.ignore, rather than every Kustomization that renders it.
func TestArchiveTreeSizeLimit(t *testing.T) {
	s := newStore(t)
	s.MaxTreeSize = 100 << 20
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"apps/cm.yaml":  "kind: ConfigMap\n",
		"docs/notes.md": strings.Repeat("n", 3<<20),
		"data/dump.bin": "",
	})
	// Sparse: 120 MB on paper, nothing on disk; it compresses to little,
	// so only the tree limit can catch it.
	if err := os.Truncate(filepath.Join(dir, "data", "dump.bin"), 120_000_000); err != nil {
		t.Fatal(err)
	}
	_, err := s.Archive(context.Background(), podinfo, "r", dir, Ignore{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v does not match ErrTooLarge", err)
	}
	for _, want := range []string{"GitRepository/flux-system/podinfo", "its files come to 117.4 MiB, over the 100 MiB", "largest files: data/dump.bin (114.4 MiB), docs/notes.md (3 MiB), apps/cm.yaml (16 bytes)", "spec.ignore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if files := artifactFiles(t, s, podinfo); len(files) != 0 {
		t.Errorf("a refused artifact left %v in the store", files)
	}

	ignore, err := NewIgnore(dir, ptr("/data/\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive(context.Background(), podinfo, "r", dir, ignore); err != nil {
		t.Errorf("with the file ignored: %v", err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		512:                          "512 bytes",
		10 << 20:                     "10 MiB",
		12<<20 + 300<<10:             "12.3 MiB",
		1536:                         "1.5 KiB",
		3 << 30:                      "3 GiB",
		10<<20 + 1:                   "10 MiB",
		int64(1.25 * float64(1<<40)): "1.2 TiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := (&sizeError{size: 10<<20 + 1, limit: 10 << 20}).Error(); !strings.Contains(got, "10485761 bytes, over the 10485760 bytes limit") {
		t.Errorf("a size just over the limit reads %q", got)
	}
}

func TestArchiveSymlinks(t *testing.T) {
	s := newStore(t)
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	writeTree(t, base, map[string]string{"outside.txt": "host secret"})
	writeTree(t, dir, map[string]string{"deploy/app.yaml": "kind: Deployment\n"})
	links := map[string]string{
		"abs":           filepath.Join(base, "outside.txt"),
		"up":            "../outside.txt",
		"deploy/up":     "../../outside.txt",
		"here":          ".",
		"through-here":  "here/../outside.txt", // reads as inside, resolves outside
		"dangling":      "missing.yaml",
		"app.yaml":      "deploy/app.yaml",
		"deploy/same":   "./app.yaml",
		"deploy-folder": "deploy",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	a := archive(t, s, podinfo, dir)
	entries, _ := readArchive(t, s.Path(a))

	for _, name := range []string{"abs", "up", "deploy/up", "through-here", "dangling"} {
		if e, ok := entries[name]; ok {
			t.Errorf("%s (-> %s) is in the artifact as %q -> %q", name, links[name], e.content, e.hdr.Linkname)
		}
	}
	for _, name := range []string{"here", "app.yaml", "deploy/same", "deploy-folder"} {
		e, ok := entries[name]
		if !ok {
			t.Errorf("%s (-> %s) is missing from the artifact", name, links[name])
			continue
		}
		if e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != links[name] {
			t.Errorf("%s is stored as type %c -> %q, want a symlink to %q", name, e.hdr.Typeflag, e.hdr.Linkname, links[name])
		}
	}
	for name, e := range entries {
		if strings.Contains(e.content, "host secret") {
			t.Errorf("%s carries the content of a file outside the tree", name)
		}
	}
}

func TestExtractRoundTrip(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml":  "resources: [deploy]\n",
		"deploy/app.yaml":     "kind: Deployment\n",
		"deploy/nested/x.yml": "x: 1\n",
		"run.sh":              "#!/bin/sh\n",
	}
	writeTree(t, dir, files)
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("deploy/app.yaml", filepath.Join(dir, "app.yaml")); err != nil {
		t.Fatal(err)
	}
	a := archive(t, s, podinfo, dir)

	dst := filepath.Join(t.TempDir(), "sub", "path")
	if err := s.Extract(context.Background(), a, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh lost its executable bit: %v, %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "app.yaml")); err != nil || target != "deploy/app.yaml" {
		t.Errorf("app.yaml = link to %q, %v; want a link to deploy/app.yaml", target, err)
	}

	// Archiving the extracted tree gives the same artifact back.
	again := archive(t, s, Ref{Kind: "GitRepository", Namespace: "flux-system", Name: "copy"}, dst)
	if again.Digest != a.Digest {
		t.Errorf("extracted tree archives to %s, the original to %s", again.Digest, a.Digest)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"a ../ entry", []tarEntry{{name: "ok.yaml", content: "ok", typ: tar.TypeReg}, {name: "../evil", content: "pwned", typ: tar.TypeReg}}},
		{"a ../ entry after a folder", []tarEntry{{name: "a/../../evil", content: "pwned", typ: tar.TypeReg}}},
		{"an absolute entry", []tarEntry{{name: "/evil", content: "pwned", typ: tar.TypeReg}}},
		{"an absolute symlink", []tarEntry{{name: "link", link: "/etc", typ: tar.TypeSymlink}}},
		{"a symlink climbing out", []tarEntry{{name: "d/link", link: "../../", typ: tar.TypeSymlink}, {name: "d/link/evil", content: "pwned", typ: tar.TypeReg}}},
		{"a symlink out through another", []tarEntry{
			{name: "here", link: ".", typ: tar.TypeSymlink},
			{name: "up", link: "here/..", typ: tar.TypeSymlink},
		}},
		{"a hard link out", []tarEntry{{name: "../evil", link: "/etc/passwd", typ: tar.TypeLink}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			a := craft(t, s, tt.entries)
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			err := s.Extract(context.Background(), a, dst)
			if err == nil {
				t.Fatal("Extract accepted the archive")
			}
			if !strings.Contains(err.Error(), "refusing to extract") {
				t.Errorf("error %q does not say the archive was refused", err)
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file was written outside the destination: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(dst, "up")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a link out of the destination was left in it: %v", err)
			}
		})
	}
}

func TestExtractDoesNotWriteThroughALinkInTheDestination(t *testing.T) {
	s := newStore(t)
	a := craft(t, s, []tarEntry{{name: "out/evil", content: "pwned", typ: tar.TypeReg}})
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	if err := os.MkdirAll(filepath.Join(parent, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "elsewhere"), filepath.Join(dst, "out")); err != nil {
		t.Fatal(err)
	}
	if err := s.Extract(context.Background(), a, dst); err == nil {
		t.Error("Extract wrote through a symlink leading out of the destination")
	}
	if _, err := os.Lstat(filepath.Join(parent, "elsewhere", "evil")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written outside the destination: %v", err)
	}
}

func TestExtractBoundsTheUnpackedSize(t *testing.T) {
	defer func(old int64) { maxExtractSize = old }(maxExtractSize)
	maxExtractSize = 1 << 10
	s := newStore(t)
	a := craft(t, s, []tarEntry{
		{name: "a", content: strings.Repeat("0", 600), typ: tar.TypeReg},
		{name: "b", content: strings.Repeat("0", 600), typ: tar.TypeReg},
	})
	err := s.Extract(context.Background(), a, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "unpacks to more than 1 KiB") {
		t.Errorf("Extract of 1200 bytes under a 1 KiB bound: %v", err)
	}
}

func TestExtractRefusesAChangedArtifact(t *testing.T) {
	s := newStore(t)
	a := craft(t, s, []tarEntry{{name: "app.yaml", content: "kind: Deployment\n", typ: tar.TypeReg}})
	a.Digest = "sha256:" + strings.Repeat("0", 64)
	dst := t.TempDir()
	if err := s.Extract(context.Background(), a, dst); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("Extract of an artifact that does not match its digest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "app.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a changed artifact was unpacked: %v", err)
	}
}
