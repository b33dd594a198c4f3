package artifactgenerator

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
)

// writeFiles creates files (slash path to content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readFiles returns the regular files under dir, slash path to content.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sourceTrees writes two sources, "repo" (manifests, values, a packaged
// chart) and "chart" (a chart folder), and returns them by alias.
func sourceTrees(t *testing.T) map[string]string {
	t.Helper()
	repo, chart := t.TempDir(), t.TempDir()
	writeFiles(t, repo, map[string]string{
		"deploy/a.yaml":           "a: 1\n",
		"deploy/b.yaml":           "b: 1\n",
		"deploy/README.md":        "read me\n",
		"deploy/sub/c.yaml":       "c: 1\n",
		"deploy/testdata/t.yaml":  "t: 1\n",
		"values-prod.yaml":        "replicas: 3\nimage:\n  tag: prod\nlist: [x]\n",
		"broken.yaml":             "a: [\n",
		"notes.txt":               "notes\n",
		"releases/v1/app-1.0.tgz": "",
	})
	pkg := tarGz(t, map[string]string{
		"podinfo/Chart.yaml":               "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
		"podinfo/values.yaml":              "replicas: 1\n",
		"podinfo/templates/configmap.yaml": "kind: ConfigMap\n",
	})
	if err := os.WriteFile(filepath.Join(repo, "releases/v1/app-1.0.tgz"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, chart, map[string]string{
		"podinfo/Chart.yaml":  "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
		"podinfo/values.yaml": "replicas: 1\nimage:\n  repo: ghcr.io/podinfo\n  tag: latest\nlist: [a, b]\n",
	})
	return map[string]string{"repo": repo, "chart": chart}
}

// tarGz packs files (slash path to content) as `helm package` does.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func op(from, to string) swapi.CopyOperation { return swapi.CopyOperation{From: from, To: to} }

// Copy operations follow Flux's cp-like rules, each case giving the files
// of the artifact.
func TestCopyOperations(t *testing.T) {
	cases := []struct {
		name string
		ops  []swapi.CopyOperation
		want map[string]string // path to content, "" for any content
	}{
		{"dir/** copies the folder's contents", []swapi.CopyOperation{op("@repo/deploy/**", "@artifact/")},
			map[string]string{"a.yaml": "a: 1\n", "b.yaml": "", "README.md": "", "sub/c.yaml": "", "testdata/t.yaml": ""}},
		{"a folder is copied as a sub-folder", []swapi.CopyOperation{op("@repo/deploy/sub", "@artifact/apps/")},
			map[string]string{"apps/sub/c.yaml": "c: 1\n"}},
		{"a file to a folder keeps its name", []swapi.CopyOperation{op("@repo/deploy/a.yaml", "@artifact/apps/")},
			map[string]string{"apps/a.yaml": "a: 1\n"}},
		{"a file to a path is renamed", []swapi.CopyOperation{op("@repo/deploy/a.yaml", "@artifact/env.yaml")},
			map[string]string{"env.yaml": "a: 1\n"}},
		{"a glob keeps the matched path", []swapi.CopyOperation{op("@repo/deploy/*.yaml", "@artifact/x/")},
			map[string]string{"x/deploy/a.yaml": "", "x/deploy/b.yaml": ""}},
		{"the source root", []swapi.CopyOperation{op("@chart/", "@artifact/")},
			map[string]string{"podinfo/Chart.yaml": "", "podinfo/values.yaml": ""}},
		{"exclude by name at any depth and by path from the selection", []swapi.CopyOperation{{From: "@repo/deploy/**", To: "@artifact/", Exclude: []string{"*.md", "testdata/**"}}},
			map[string]string{"a.yaml": "", "b.yaml": "", "sub/c.yaml": ""}},
		{"later operations overwrite", []swapi.CopyOperation{op("@repo/deploy/a.yaml", "@artifact/x.yaml"), op("@repo/deploy/b.yaml", "@artifact/x.yaml")},
			map[string]string{"x.yaml": "b: 1\n"}},
		{"merge as Helm merges values", []swapi.CopyOperation{op("@chart/", "@artifact/"), {From: "@repo/values-prod.yaml", To: "@artifact/podinfo/values.yaml", Strategy: swapi.MergeStrategy}},
			map[string]string{"podinfo/Chart.yaml": "", "podinfo/values.yaml": "image:\n  repo: ghcr.io/podinfo\n  tag: prod\nlist:\n- x\nreplicas: 3\n"}},
		{"merge into nothing copies", []swapi.CopyOperation{{From: "@repo/values-prod.yaml", To: "@artifact/values.yaml", Strategy: swapi.MergeStrategy}},
			map[string]string{"values.yaml": "replicas: 3\nimage:\n  tag: prod\nlist: [x]\n"}},
		{"extract a chart tarball", []swapi.CopyOperation{{From: "@repo/releases/v1/app-1.0.tgz", To: "@artifact/", Strategy: swapi.ExtractStrategy}},
			map[string]string{"podinfo/Chart.yaml": "", "podinfo/values.yaml": "", "podinfo/templates/configmap.yaml": ""}},
		{"extract with ** finds tarballs at any depth and skips other files", []swapi.CopyOperation{{From: "@repo/**", To: "@artifact/charts/", Strategy: swapi.ExtractStrategy}},
			map[string]string{"charts/podinfo/Chart.yaml": "", "charts/podinfo/values.yaml": "", "charts/podinfo/templates/configmap.yaml": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			if err := build(context.Background(), c.ops, sourceTrees(t), dst); err != nil {
				t.Fatal(err)
			}
			got := readFiles(t, dst)
			var gotNames, wantNames []string
			for n := range got {
				gotNames = append(gotNames, n)
			}
			for n, content := range c.want {
				wantNames = append(wantNames, n)
				if content != "" && got[n] != content {
					t.Errorf("%s holds %q, want %q", n, got[n], content)
				}
			}
			slices.Sort(gotNames)
			slices.Sort(wantNames)
			if !slices.Equal(gotNames, wantNames) {
				t.Errorf("artifact files %v, want %v", gotNames, wantNames)
			}
		})
	}
}

// A copy operation that cannot be carried out says why, naming what is
// wrong, and is a copyError: the generator stalls instead of retrying.
func TestCopyOperationErrors(t *testing.T) {
	cases := []struct {
		name string
		op   swapi.CopyOperation
		want string
	}{
		{"unknown alias", op("@nope/deploy/**", "@artifact/"), "source alias 'nope' not found (the generator's sources are 'chart', 'repo')"},
		{"glob matching nothing", op("@repo/missing/*.yaml", "@artifact/"), "no files match pattern 'missing/*.yaml' in source 'repo'"},
		{"everything excluded", swapi.CopyOperation{From: "@repo/deploy/*.yaml", To: "@artifact/", Exclude: []string{"*.yaml"}}, "all files matching pattern 'deploy/*.yaml' in source 'repo' were excluded"},
		{"missing file", op("@repo/deploy/z.yaml", "@artifact/"), "source 'deploy/z.yaml' does not exist"},
		{"source path escaping the root", op("@repo/../../etc/passwd", "@artifact/"), "invalid copy source '@repo/../../etc/passwd': the path leaves the root of source 'repo'"},
		{"destination escaping the root", op("@repo/deploy/a.yaml", "@artifact/../../a.yaml"), "invalid copy destination '@artifact/../../a.yaml': the path leaves the root of the artifact"},
		{"extract of a folder", swapi.CopyOperation{From: "@repo/deploy", To: "@artifact/", Strategy: swapi.ExtractStrategy}, "extract strategy is not supported for directories, got 'deploy'"},
		{"extract of a file that is no tarball", swapi.CopyOperation{From: "@repo/notes.txt", To: "@artifact/", Strategy: swapi.ExtractStrategy}, "extract strategy requires tarball file (.tar.gz or .tgz), got 'notes.txt'"},
		{"merge of a file that is no YAML", swapi.CopyOperation{From: "@repo/broken.yaml", To: "@artifact/values.yaml", Strategy: swapi.MergeStrategy}, "merging 'broken.yaml'"},
		{"invalid exclude", swapi.CopyOperation{From: "@repo/deploy/**", To: "@artifact/", Exclude: []string{"[a"}}, "invalid exclude pattern '[a'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops := []swapi.CopyOperation{c.op}
			if c.op.Strategy == swapi.MergeStrategy {
				ops = []swapi.CopyOperation{op("@repo/values-prod.yaml", "@artifact/values.yaml"), c.op}
			}
			err := build(context.Background(), ops, sourceTrees(t), filepath.Join(t.TempDir(), "out"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one that says %q", err, c.want)
			}
			var ce *copyError
			if !errors.As(err, &ce) {
				t.Errorf("%v is not a copyError", err)
			}
		})
	}
}

// A symlink in a source that leads out of it is not followed.
func TestCopyDoesNotFollowLinksOut(t *testing.T) {
	sources := sourceTrees(t)
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret": "s3cr3t"})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(sources["repo"], "deploy", "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	err := build(context.Background(), []swapi.CopyOperation{op("@repo/deploy/link", "@artifact/")}, sources, dst)
	if err == nil {
		t.Fatalf("copied a link out of the source: %v", readFiles(t, dst))
	}
	err = build(context.Background(), []swapi.CopyOperation{op("@repo/deploy/", "@artifact/")}, sources, dst)
	for name, content := range readFiles(t, dst) {
		if content == "s3cr3t" {
			t.Fatalf("%s holds the file outside the source (error %v)", name, err)
		}
	}
}
