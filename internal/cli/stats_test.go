package cli

import (
	"fmt"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

func artifactSize(size int64) repoOption {
	return func(r *sourcev1.GitRepository) {
		stored(r)
		r.Status.Artifact.Size = &size
	}
}

func TestStatsCountsEveryKind(t *testing.T) {
	fakeCluster(t,
		gitRepo("podinfo", artifactSize(1536)),
		gitRepo("tiny", artifactSize(512)),
		gitRepo("broken", failing("authentication required")),
		gitRepo("paused", suspendedRepo, failing("authentication required")),
		gitRepo("elsewhere", inNamespace("apps"), artifactSize(1<<20)),
	)

	out, _, err := weir(t, "stats")
	if err != nil {
		t.Fatal(err)
	}

	row := func(cells ...string) string {
		return fmt.Sprintf("%-20s%-10s%-10s%-12s%s\n", cells[0], cells[1], cells[2], cells[3], cells[4])
	}
	want := row("RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE") +
		row("GitRepository", "3", "2", "1", "2.0 KiB")
	for _, kind := range []string{"OCIRepository", "Bucket", "HelmRepository", "HelmChart", "ArtifactGenerator", "Kustomization", "HelmRelease", "Receiver", "Alert", "Provider", "FluxInstance"} {
		want += row(kind, "0", "0", "0", "-")
	}
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}

	out, _, err = weir(t, "stats", "-A")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(out, "\n")[1]; got != strings.TrimSuffix(row("GitRepository", "4", "2", "1", "1.0 MiB"), "\n") {
		t.Errorf("stats -A: GitRepository row is %q", got)
	}
}

func TestFormatSize(t *testing.T) {
	for size, want := range map[int64]string{0: "-", 1: "1 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := formatSize(size); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", size, got, want)
		}
	}
}
