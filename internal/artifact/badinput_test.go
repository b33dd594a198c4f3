package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bad-input suite of archive extraction: crafted tarballs, as a
// compromised OCI registry or a hand-made artifact could serve them. Each
// case unpacks into dst inside a parent folder and checks what the suite
// promises: the error names the entry and the problem, nothing is written
// outside dst, no symlink left in dst resolves outside it, no file keeps a
// set-id or world-writable mode, and the unpacked size stays bounded.

// badArchive is one crafted tarball and what unpacking it must do.
type badArchive struct {
	name    string
	entries []tarItem
	raw     []byte   // used instead of entries when set: not a tar.gz
	want    []string // fragments of the error; none: it must unpack
	// absent are paths under dst that must not exist afterwards.
	absent []string
}

// tarItem is one entry of a crafted archive: its header as written, and
// the content of a regular file.
type tarItem struct {
	hdr     tar.Header
	content string
}

func file(name, content string) tarItem {
	return tarItem{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, content: content}
}

func folder(name string) tarItem {
	return tarItem{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func symlink(name, target string) tarItem {
	return tarItem{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) tarItem {
	return tarItem{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}

func withMode(it tarItem, mode int64) tarItem { it.hdr.Mode = mode; return it }

// testExtractSize and testExtractEntries are the bounds the suite runs
// under, so that a bomb is cheap to build.
const (
	testExtractSize    = 1 << 20
	testExtractEntries = 1000
)

func TestBadArchives(t *testing.T) {
	defer func(size int64, entries int) { maxExtractSize, maxExtractEntries = size, entries }(maxExtractSize, maxExtractEntries)
	maxExtractSize, maxExtractEntries = testExtractSize, testExtractEntries

	zeros := func(n int) string { return strings.Repeat("\x00", n) }
	many := make([]tarItem, testExtractEntries+1)
	for i := range many {
		many[i] = folder("d/")
	}
	valid := tarGz(t, []tarItem{file("a.yaml", "a: 1\n")})
	longName := strings.Repeat("n", 300)
	deep := strings.Repeat("d/", 1500) + "x"

	cases := []badArchive{
		// Entries whose path leaves the folder (tar-slip).
		{name: "a ../ entry", entries: []tarItem{file("ok.yaml", "ok"), file("../evil", "pwned")},
			want: []string{`"../evil"`, "leads out of the folder", "refusing to extract"}},
		{name: "a ../ entry behind a folder", entries: []tarItem{file("a/../../evil", "pwned")},
			want: []string{`"a/../../evil"`, "leads out of the folder"}},
		{name: "a deep ../ entry", entries: []tarItem{file("a/b/c/../../../../evil", "pwned")},
			want: []string{"leads out of the folder"}},
		{name: "a ./../ entry", entries: []tarItem{file("./../evil", "pwned")},
			want: []string{"leads out of the folder"}},
		{name: "an absolute entry", entries: []tarItem{file("/evil", "pwned")},
			want: []string{`"/evil"`, "its path is absolute"}},
		{name: "an absolute folder", entries: []tarItem{folder("/tmp/evil/")},
			want: []string{"its path is absolute"}},
		{name: "an entry with an empty name", entries: []tarItem{file("", "x")},
			want: []string{"its name is empty"}},
		{name: "a Windows-style ..\\ entry stays a plain name", entries: []tarItem{file(`..\evil`, "x")}},
		{name: "a drive letter stays a plain name", entries: []tarItem{file(`C:\evil`, "x")}},
		{name: "the entry . is passed over", entries: []tarItem{folder("./"), file("./a.yaml", "a")}},
		{name: "a ../ that stays inside", entries: []tarItem{file("a/../b.yaml", "b")}},

		// Symlinks.
		{name: "an absolute symlink", entries: []tarItem{symlink("passwd", "/etc/passwd")},
			want: []string{`"passwd"`, `symlink to "/etc/passwd", out of the folder`}, absent: []string{"passwd"}},
		{name: "a symlink climbing out", entries: []tarItem{symlink("d/up", "../../")},
			want: []string{`"d/up"`, "out of the folder"}, absent: []string{"d/up"}},
		{name: "a symlink climbing out behind a folder name", entries: []tarItem{symlink("l", "sub/../../x")},
			want: []string{"out of the folder"}},
		{name: "a symlink with no target", entries: []tarItem{symlink("l", "")},
			want: []string{`"l"`, "out of the folder"}},
		{name: "a symlink out through another symlink", entries: []tarItem{symlink("here", "."), symlink("up", "here/..")},
			want: []string{`"up"`, "resolves out of the folder"}, absent: []string{"up"}},
		{name: "a symlink out through another, then a failing entry", entries: []tarItem{symlink("here", "."), symlink("up", "here/.."), file("up/evil", "pwned")},
			want: []string{`"up/evil"`}, absent: []string{"up"}},
		{name: "a file replaced by a symlink out", entries: []tarItem{file("x", "x"), symlink("x", "/etc/passwd")},
			want: []string{"out of the folder"}},
		{name: "a file written through a symlink climbing out", entries: []tarItem{symlink("d/link", "../../"), file("d/link/evil", "pwned")},
			want: []string{"out of the folder"}},
		{name: "a symlink chain whose second link climbs out", entries: []tarItem{symlink("a", "b"), symlink("b", "../..")},
			want: []string{`"b"`, "out of the folder"}},
		{name: "a symlink inside is kept", entries: []tarItem{file("real.yaml", "r"), symlink("link.yaml", "real.yaml")}},
		{name: "a file written through a symlink inside stays inside", entries: []tarItem{folder("sub/"), symlink("l", "sub"), file("l/x", "x")}},
		{name: "a dangling symlink inside is kept", entries: []tarItem{symlink("l", "nope")}},

		// Hard links and special files: never unpacked.
		{name: "a hard link out", entries: []tarItem{hardlink("pw", "/etc/passwd")}, absent: []string{"pw"}},
		{name: "a hard link climbing out", entries: []tarItem{hardlink("pw", "../../../etc/passwd")}, absent: []string{"pw"}},
		{name: "a hard link with a climbing name", entries: []tarItem{hardlink("../evil", "/etc/passwd")},
			want: []string{`"../evil"`, "leads out of the folder"}},
		{name: "a character device", entries: []tarItem{{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}}, absent: []string{"null"}},
		{name: "a block device", entries: []tarItem{{hdr: tar.Header{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}}}, absent: []string{"sda"}},
		{name: "a fifo", entries: []tarItem{{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644}}}, absent: []string{"fifo"}},

		// Modes.
		{name: "a set-uid file", entries: []tarItem{withMode(file("run", "#!/bin/sh\n"), 0o4755)}},
		{name: "a world-writable file", entries: []tarItem{withMode(file("w", "w"), 0o777)}},
		{name: "a set-gid sticky folder", entries: []tarItem{withMode(folder("d/"), 0o3777), file("d/x", "x")}},

		// Names the file system cannot hold.
		{name: "a name longer than the file system allows", entries: []tarItem{file("a/"+longName, "x")},
			want: []string{"extracting", longName[:40], "file name too long"}},
		{name: "a path nested 1500 folders deep stays inside", entries: []tarItem{file(deep, "x")}},
		{name: "a file where a folder is", entries: []tarItem{folder("a/"), file("a", "x")},
			want: []string{`"a"`, "a folder is in the way"}},
		{name: "a folder where a file is", entries: []tarItem{file("a", "x"), folder("a/")},
			want: []string{`"a/"`, "file exists"}},

		// Bombs.
		{name: "one file over the unpacked size", entries: []tarItem{file("zeros", zeros(testExtractSize+1))},
			want: []string{"unpacks to more than 1 MiB", "refusing to extract it into"}, absent: []string{"zeros"}},
		{name: "files that add up to more than the unpacked size", entries: []tarItem{file("a", zeros(400<<10)), file("b", zeros(400<<10)), file("c", zeros(400<<10))},
			want: []string{"unpacks to more than 1 MiB"}, absent: []string{"c"}},
		{name: "more entries than an artifact may hold", entries: many,
			want: []string{"holds more than 1000 entries", "refusing to extract it into"}},

		// Streams that are not tar.gz.
		{name: "not gzip", raw: []byte("just text, no archive"), want: []string{"is not a gzip archive"}},
		{name: "an empty stream", raw: []byte{}, want: []string{"is not a gzip archive"}},
		{name: "gzip cut short", raw: valid[:len(valid)/2], want: []string{"the test stream", "unexpected EOF"}},
		{name: "gzip of something that is not tar", raw: gz(t, []byte(strings.Repeat("not a tar header ", 64))), want: []string{"reading the test stream"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t)
		})
	}
}

func (tc badArchive) run(t *testing.T) {
	t.Helper()
	data := tc.raw
	if data == nil {
		data = tarGz(t, tc.entries)
	}
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	err := unpack(context.Background(), bytes.NewReader(data), dst, "the test stream")
	switch {
	case len(tc.want) == 0 && err != nil:
		t.Errorf("unpacking failed: %v", err)
	case len(tc.want) > 0 && err == nil:
		t.Errorf("the archive was unpacked, want an error saying %q", tc.want)
	}
	if err != nil {
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
	checkContained(t, parent, dst)
	for _, p := range tc.absent {
		if _, err := os.Lstat(filepath.Join(dst, filepath.FromSlash(p))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was unpacked: %v", p, err)
		}
	}
}

// checkContained checks that parent holds nothing but dst, that no
// symlink under dst resolves outside it, that no file is set-id, sticky
// or writable by others, and that the unpacked size is within the bound.
func checkContained(t *testing.T, parent, dst string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "dst" {
			t.Errorf("%s was written outside the destination", e.Name())
		}
	}
	realDst, err := filepath.EvalSymlinks(dst)
	if err != nil {
		return // nothing was unpacked
	}
	var size int64
	err = filepath.WalkDir(realDst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 && (fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 || fi.Mode().Perm()&0o002 != 0) {
			t.Errorf("%s has mode %s", p, fi.Mode())
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if real, err := filepath.EvalSymlinks(p); err == nil && !within(realDst, real) {
				t.Errorf("%s resolves to %s, outside the destination", p, real)
			}
		case fi.Mode().IsRegular():
			size += fi.Size()
		case !fi.IsDir():
			t.Errorf("%s is a %s", p, fi.Mode().Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size > maxExtractSize {
		t.Errorf("%d bytes were unpacked, over the %d bound", size, maxExtractSize)
	}
}

// tarGz writes the items as a tar.gz, as crafted as they come: names,
// types and modes are written as given.
func tarGz(t testing.TB, items []tarItem) []byte {
	t.Helper()
	data, ok := tryTarGz(items)
	if !ok {
		t.Fatalf("archive/tar cannot write %v", items)
	}
	return data
}

// ungz decompresses a gzip stream.
func ungz(t testing.TB, data []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
