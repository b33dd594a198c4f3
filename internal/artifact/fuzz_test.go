package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// The fuzz tests of extraction check, for any archive, what the bad-input
// suite checks for crafted ones (see checkContained): no panic, nothing
// written outside the destination, no symlink resolving out of it, no
// set-id file, and an unpacked size within the bound. Their seeds run
// under plain `go test`; `make fuzz` runs them for longer.

// FuzzExtractEntries builds archives of three entries whose names, link
// targets and types are chosen by the fuzzer: the paths are where escapes
// hide.
func FuzzExtractEntries(f *testing.F) {
	lowerExtractBounds(f)
	const (
		reg = iota
		dir
		sym
		hard
	)
	f.Add("a.yaml", "", byte(reg), "b/c.yaml", "", byte(reg), "d/", "", byte(dir))
	f.Add("ok", "", byte(reg), "../evil", "", byte(reg), "/evil", "", byte(reg))
	f.Add("here", ".", byte(sym), "up", "here/..", byte(sym), "up/evil", "", byte(reg))
	f.Add("d/link", "../../", byte(sym), "d/link/evil", "", byte(reg), "x", "", byte(reg))
	f.Add("a", "b", byte(sym), "b", "../..", byte(sym), "a/evil", "", byte(reg))
	f.Add("sub/", "", byte(dir), "l", "sub", byte(sym), "l/x", "", byte(reg))
	f.Add("pw", "/etc/passwd", byte(hard), "x", "", byte(reg), "x", "/etc", byte(sym))
	f.Add("a/", "", byte(dir), "a", "", byte(reg), "a/b", "", byte(reg))
	f.Add(`..\evil`, "", byte(reg), `C:\evil`, "", byte(reg), "./", "", byte(dir))
	f.Fuzz(func(t *testing.T, n1, l1 string, t1 byte, n2, l2 string, t2 byte, n3, l3 string, t3 byte) {
		var items []tarItem
		for _, e := range []struct {
			name, link string
			typ        byte
		}{{n1, l1, t1}, {n2, l2, t2}, {n3, l3, t3}} {
			switch e.typ % 4 {
			case reg:
				items = append(items, file(e.name, "content of "+e.name))
			case dir:
				items = append(items, folder(e.name))
			case sym:
				items = append(items, symlink(e.name, e.link))
			case hard:
				items = append(items, hardlink(e.name, e.link))
			}
		}
		data, ok := tryTarGz(items)
		if !ok {
			return // archive/tar cannot write these headers
		}
		extractContained(t, data)
	})
}

// FuzzExtractStream unpacks any tar stream (gzipped by the test, so that
// the fuzzer's changes reach the tar headers).
func FuzzExtractStream(f *testing.F) {
	lowerExtractBounds(f)
	seeds := [][]tarItem{
		{file("a.yaml", "a: 1\n"), symlink("l", "a.yaml")},
		{file("../evil", "pwned")},
		{symlink("here", "."), symlink("up", "here/..")},
		{file("zeros", string(make([]byte, 4096)))},
		{hardlink("pw", "/etc/passwd"), {hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}}},
	}
	for _, s := range seeds {
		f.Add(ungz(f, tarGz(f, s)))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		extractContained(t, gz(t, stream))
	})
}

// extractContained unpacks data and checks that it stayed contained. An
// extraction that does not end crashes the test, so that the fuzzer keeps
// the input.
func extractContained(t *testing.T, data []byte) {
	watchdog := time.AfterFunc(extractDeadline, func() {
		panic(fmt.Sprintf("extracting a %d-byte archive took over %s", len(data), extractDeadline))
	})
	defer watchdog.Stop()
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	_ = unpack(context.Background(), bytes.NewReader(data), dst, "fuzzed archive")
	checkContained(t, parent, dst)
}

// extractDeadline is far more than extracting an archive within the
// lowered bounds takes, even on a loaded machine.
const extractDeadline = 30 * time.Second

// lowerExtractBounds makes bombs cheap for the fuzzer to build.
func lowerExtractBounds(f *testing.F) {
	size, entries := maxExtractSize, maxExtractEntries
	maxExtractSize, maxExtractEntries = testExtractSize, testExtractEntries
	f.Cleanup(func() { maxExtractSize, maxExtractEntries = size, entries })
}

// tryTarGz is tarGz for headers archive/tar may refuse to write.
func tryTarGz(items []tarItem) (data []byte, ok bool) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, it := range items {
		hdr := it.hdr
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, false
		}
		if _, err := tw.Write([]byte(it.content)); err != nil {
			return nil, false
		}
	}
	if err := tw.Close(); err != nil {
		return nil, false
	}
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	return out.Bytes(), true
}
