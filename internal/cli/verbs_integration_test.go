package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The tests in this file run the verbs that act on every kind (get's
// options, delete, export, stats, completion) as a user does: weir as a
// process of its own against the test cluster.

// weirProcess is weir started as a process of its own (see runWeir), with
// the test cluster as $KUBECONFIG rather than a --kubeconfig flag, so that
// the arguments are exactly those given (a completion reads its last one).
func weirProcess(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	argv, _ := json.Marshal(args)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(argv), "KUBECONFIG="+env.Cluster.Kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

// runWeirInput runs weir with stdin as its standard input (none when
// empty) and returns its exit code and what it printed.
func runWeirInput(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := weirProcess(ctx, stdin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("running weir %s: %v\nstderr:\n%s", strings.Join(args, " "), err, &errOut)
	}
	return code, out.String(), errOut.String()
}

func TestGetOptionsOnALiveSource(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	createGitRepository(t, s.ns, "broken", s.url, "nope")
	labelRepo(t, s.ns, s.name, "team", "payments")
	waitReady(t, s.ns, "broken", metav1.ConditionFalse)

	out := mustRunWeir(t, "get", "sources", "git", "-n", s.ns, "-o", "wide")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"NAME", "REVISION", "SUSPENDED", "READY", "REASON", "SINCE", "AGE", "MESSAGE"}) {
		t.Errorf("-o wide header is %q", lines[0])
	}
	if f := strings.Fields(lines[2]); len(f) < 7 || f[0] != s.name || f[3] != "True" || f[4] != meta.SucceededReason || !strings.HasSuffix(f[6], "s") {
		t.Errorf("-o wide row is %q, want %s ... True Succeeded SINCE AGE ...", lines[2], s.name)
	}

	out = mustRunWeir(t, "get", "sources", "git", "-n", s.ns, "--status-selector", "ready=false")
	if got := firstColumn(out); !slices.Equal(got, []string{"broken"}) {
		t.Errorf("--status-selector ready=false listed %v\n%s", got, out)
	}
	out = mustRunWeir(t, "get", "sources", "git", "-n", s.ns, "-l", "team=payments")
	if got := firstColumn(out); !slices.Equal(got, []string{s.name}) {
		t.Errorf("-l team=payments listed %v\n%s", got, out)
	}
	out = mustRunWeir(t, "get", "all", "-n", s.ns)
	if !strings.Contains(out, "\ngitrepository/broken ") || !strings.Contains(out, "\ngitrepository/"+s.name+" ") {
		t.Errorf("get all printed\n%s", out)
	}
}

func labelRepo(t *testing.T, ns, name, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	obj := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until the Ready condition of the GitRepository is status.
func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		obj := &sourcev1.GitRepository{}
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
		if err == nil {
			for _, c := range obj.Status.Conditions {
				if c.Type == meta.ReadyCondition && c.Status == status {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GitRepository %s is not Ready=%s: %v", name, status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGetWatchPrintsChangesUntilItsTimeout(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := weirProcess(ctx, "", "get", "sources", "git", "-n", s.ns, "--watch", "--timeout", "10s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var got []string
	for line := range lines {
		got = append(got, line)
		if len(got) == 2 {
			// The table is out: the watch is open. Suspend the source.
			mustRunWeir(t, "suspend", "source", "git", s.name, "-n", s.ns)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the watch ended with %v, want exit 0 at its --timeout", err)
	}
	if d := time.Since(start); d < 10*time.Second {
		t.Errorf("the watch ended after %s, before its --timeout of 10s", d)
	}
	if len(got) < 3 {
		t.Fatalf("want the table and a line for the change, got\n%s", strings.Join(got, "\n"))
	}
	if f := strings.Fields(got[len(got)-1]); len(f) < 4 || f[0] != s.name || f[2] != "True" {
		t.Errorf("the last line is %q, want %s suspended (SUSPENDED True)", got[len(got)-1], s.name)
	}
	if !strings.HasPrefix(got[0], "NAME ") || strings.HasPrefix(got[2], "NAME") {
		t.Errorf("want one header, got\n%s", strings.Join(got, "\n"))
	}
}

func TestImpersonationIsTheClusterRules(t *testing.T) {
	s := newLiveSource(t, "podinfo")

	code, _, errOut := runWeir(t, "get", "sources", "git", "-n", s.ns, "--as", "nobody")
	if code != 1 || !strings.Contains(errOut, `"nobody" cannot list resource "gitrepositories"`) {
		t.Errorf("--as nobody: exit %d, stderr %s", code, errOut)
	}
	out := mustRunWeir(t, "get", "sources", "git", "-n", s.ns, "--as", "admin", "--as-group", "system:masters")
	if got := firstColumn(out); !slices.Equal(got, []string{s.name}) {
		t.Errorf("--as admin --as-group system:masters listed %v", got)
	}
}

func TestDeleteAsksThenDeletes(t *testing.T) {
	ns := env.Namespace(t)
	createGitRepository(t, ns, "podinfo", "https://git.example.invalid/podinfo.git", "main")

	// No answer (standard input closed): nothing is deleted, exit 1.
	code, _, errOut := runWeirInput(t, "", "delete", "source", "git", "podinfo", "-n", ns)
	if code != 1 || !strings.Contains(errOut, "Are you sure you want to delete source git podinfo? [y/N]") ||
		!strings.Contains(errOut, "✗ source git podinfo was not deleted: not confirmed") {
		t.Errorf("with no answer: exit %d, stderr %s", code, errOut)
	}
	if !liveRepoExists(t, ns, "podinfo") {
		t.Fatal("deleted without an answer")
	}
	code, _, _ = runWeirInput(t, "n\n", "delete", "source", "git", "podinfo", "-n", ns)
	if code != 1 || !liveRepoExists(t, ns, "podinfo") {
		t.Fatalf("answered n: exit %d, exists %v", code, liveRepoExists(t, ns, "podinfo"))
	}

	code, out, errOut := runWeirInput(t, "y\n", "delete", "source", "git", "podinfo", "-n", ns)
	if code != 0 || out != "► deleting source git podinfo in "+ns+" namespace\n✔ source git deleted\n" {
		t.Errorf("answered y: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for liveRepoExists(t, ns, "podinfo") {
		if time.Now().After(deadline) {
			t.Fatal("podinfo is still there 30s after weir delete")
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, _, errOut = runWeirInput(t, "", "delete", "source", "git", "podinfo", "-n", ns, "--silent")
	if code != 1 || !strings.Contains(errOut, "✗ GitRepository "+ns+"/podinfo not found") {
		t.Errorf("deleting it again: exit %d, stderr %s", code, errOut)
	}
}

func liveRepoExists(t *testing.T, ns, name string) bool {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &sourcev1.GitRepository{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestExportRoundTrips(t *testing.T) {
	ns := env.Namespace(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-auth"},
		StringData: map[string]string{"username": "git", "password": "s3cret"},
	}
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "podinfo",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "example.com/owner": "jane"},
		},
		Spec: sourcev1.GitRepositorySpec{
			URL: "https://git.example.invalid/podinfo.git", Interval: metav1.Duration{Duration: time.Hour},
			SecretRef: &meta.LocalObjectReference{Name: "git-auth"},
		},
	}
	for _, obj := range []client.Object{secret, repo} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}

	out := mustRunWeir(t, "export", "source", "git", "podinfo", "-n", ns, "--with-credentials")

	// The manifests are clean, and create the same objects in another namespace.
	other := env.Namespace(t)
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(strings.ReplaceAll(out, "namespace: "+ns, "namespace: "+other)), 4096)
	var kinds []string
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if _, ok := u.Object["status"]; ok {
			t.Errorf("the export has a status:\n%s", out)
		}
		for key := range u.Object["metadata"].(map[string]any) {
			if !slices.Contains([]string{"name", "namespace", "labels", "annotations"}, key) {
				t.Errorf("the export has metadata.%s", key)
			}
		}
		kinds = append(kinds, u.GetKind())
		if err := env.Client.Create(context.Background(), u); err != nil {
			t.Fatalf("creating the exported %s: %v", u.GetKind(), err)
		}
	}
	if !slices.Equal(kinds, []string{"GitRepository", "Secret"}) {
		t.Fatalf("exported %v, want the GitRepository then its Secret:\n%s", kinds, out)
	}
	if strings.Contains(out, "last-applied-configuration") || !strings.Contains(out, "example.com/owner: jane") {
		t.Errorf("annotations:\n%s", out)
	}
	copied := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: other, Name: "git-auth"}, copied); err != nil {
		t.Fatal(err)
	}
	if string(copied.Data["password"]) != "s3cret" {
		t.Errorf("the exported Secret holds %q", copied.Data)
	}
}

func TestStatsCountsLiveSources(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	createGitRepository(t, s.ns, "broken", s.url, "nope")
	waitReady(t, s.ns, "broken", metav1.ConditionFalse)

	out := mustRunWeir(t, "stats", "-n", s.ns)

	lines := strings.Split(out, "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE"}) {
		t.Errorf("header is %q", lines[0])
	}
	f := strings.Fields(lines[1])
	if len(f) != 6 || f[0] != "GitRepository" || f[1] != "2" || f[2] != "1" || f[3] != "0" || f[5] != "B" && f[5] != "KiB" {
		t.Errorf("GitRepository row is %q, want 2 running, 1 failing, 0 suspended and the artifact's size", lines[1])
	}
}

func TestCompletionNamesComeFromTheCluster(t *testing.T) {
	ns := env.Namespace(t)
	for _, name := range []string{"podinfo", "podman", "other"} {
		createGitRepository(t, ns, name, "https://git.example.invalid/"+name+".git", "main")
	}

	for _, verb := range [][]string{{"get", "sources"}, {"reconcile", "source"}, {"suspend", "source"}, {"delete", "source"}, {"export", "source"}} {
		args := append(append([]string{"__complete"}, verb...), "git", "-n", ns, "pod")
		code, out, errOut := runWeirInput(t, "", args...)
		if code != 0 {
			t.Fatalf("weir %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
		}
		if want := "podinfo\npodman\n:4\n"; out != want {
			t.Errorf("weir %s printed %q, want %q", strings.Join(args, " "), out, want)
		}
	}

	// suspend takes several names: those given are not offered again.
	_, out, _ := runWeirInput(t, "", "__complete", "suspend", "source", "git", "podinfo", "-n", ns, "")
	if out != "other\npodman\n:4\n" {
		t.Errorf("suspend after podinfo completes %q", out)
	}
	// reconcile takes one.
	_, out, _ = runWeirInput(t, "", "__complete", "reconcile", "source", "git", "podinfo", "-n", ns, "")
	if out != ":4\n" {
		t.Errorf("reconcile after a name completes %q", out)
	}
}

func TestCompletionScriptLoadsInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	script := filepath.Join(t.TempDir(), "weir.bash")
	if err := os.WriteFile(script, []byte(mustRunWeir(t, "completion", "bash")), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.CommandContext(t.Context(), bash, "-c", "source "+script+" && complete -p weir").CombinedOutput()

	if err != nil || !strings.HasPrefix(string(out), "complete ") || !strings.HasSuffix(strings.TrimSpace(string(out)), " weir") {
		t.Errorf("bash: %v\n%s", err, out)
	}
}
