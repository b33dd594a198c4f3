package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/testenv"
	"github.com/weirhq/weir/internal/version"
)

// The tests in this file run weir against a real control plane with weir's
// controllers; the other test files of the package use fake clients and
// need neither.
var env *testenv.Env

// mainArgsEnv, when set, makes the test binary run weir's Main with the
// JSON list of arguments it holds instead of the tests: see runWeir.
const mainArgsEnv = "WEIR_CLI_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if argv, ok := os.LookupEnv(mainArgsEnv); ok {
		var args []string
		if err := json.Unmarshal([]byte(argv), &args); err != nil {
			panic(err)
		}
		os.Exit(Main(args))
	}
	testenv.Main(m, &env)
}

// runWeir runs weir as a user does, as a process of its own (this test
// binary, which calls Main), pointed at the test cluster, and returns its
// exit code and what it printed.
func runWeir(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	args = append(args, "--kubeconfig", env.Cluster.Kubeconfig)
	argv, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(argv))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("running weir %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &out, &errOut)
	}
	return code, out.String(), errOut.String()
}

// mustRunWeir runs weir and fails the test unless it exits 0.
func mustRunWeir(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runWeir(t, args...)
	if code != 0 {
		t.Fatalf("weir %s exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// liveSource is a GitRepository that weir's controller fetched from a Git
// server of its own.
type liveSource struct {
	ns, name string
	url      string
	repo     *testenv.Repo
	commit   string // the hash of the last commit pushed
}

// newLiveSource pushes a commit to a new Git server, creates a
// GitRepository for its main branch with an interval of an hour (so that
// every fetch the tests see is one they asked for) and waits until it is
// Ready with that commit.
func newLiveSource(t *testing.T, name string) *liveSource {
	t.Helper()
	git := testenv.NewGitServer(t, "", "")
	s := &liveSource{ns: env.Namespace(t), name: name, url: git.HTTPURL(name), repo: git.Repo(t, name)}
	s.commit = s.repo.Commit("main", map[string]string{"app/config.yaml": "replicas: 1\n"}, "first").String()
	createGitRepository(t, s.ns, name, s.url, "main")
	s.waitRevision(t, s.commit)
	return s
}

func createGitRepository(t *testing.T, ns, name, url, branch string) {
	t.Helper()
	obj := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Interval:  metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: branch},
		},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating GitRepository %s: %v", name, err)
	}
}

func (s *liveSource) get(t *testing.T) *sourcev1.GitRepository {
	t.Helper()
	obj := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: s.name}, obj); err != nil {
		t.Fatalf("reading GitRepository %s: %v", s.name, err)
	}
	return obj
}

// waitRevision waits until the source is Ready with commit.
func (s *liveSource) waitRevision(t *testing.T, commit string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		obj := s.get(t)
		if conditions.IsReady(obj) && obj.Status.ObservedGeneration == obj.Generation &&
			obj.Status.Artifact != nil && obj.Status.Artifact.Revision == "main@sha1:"+commit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GitRepository %s is not Ready with %s: conditions %+v, artifact %+v", s.name, commit, obj.Status.Conditions, obj.Status.Artifact)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGetListsALiveGitRepository(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	short := "main@sha1:" + s.commit[:8]

	out := mustRunWeir(t, "get", "sources", "git", "-n", s.ns)

	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got\n%s", out)
	}
	header, row := lines[0], lines[1]
	if got := strings.Fields(header); !slices.Equal(got, []string{"NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"}) {
		t.Errorf("header is %q", header)
	}
	fields := strings.Fields(row)
	if len(fields) < 5 || fields[0] != s.name || fields[1] != short || fields[2] != "False" || fields[3] != "True" {
		t.Fatalf("row is %q, want %s %s False True ...", row, s.name, short)
	}
	if msg := strings.Join(fields[4:], " "); msg != "stored artifact for revision '"+short+"'" {
		t.Errorf("message is %q", msg)
	}
	for _, col := range []struct{ title, value string }{{"REVISION", short}, {"SUSPENDED", "False"}, {"MESSAGE", "stored"}} {
		if strings.Index(header, col.title) != strings.Index(row, col.value) {
			t.Errorf("column %s is not aligned:\n%s", col.title, out)
		}
	}

	// -A leads with the namespace and lists the other tests' objects too.
	out = mustRunWeir(t, "get", "sources", "git", "-A")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"}) {
		t.Errorf("header with -A is %q", lines[0])
	}
	found := false
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == s.ns && f[1] == s.name {
			found = true
			if f[2] != short || f[4] != "True" {
				t.Errorf("row with -A is %q", line)
			}
		}
	}
	if !found {
		t.Errorf("no row for %s/%s with -A:\n%s", s.ns, s.name, out)
	}

	out = mustRunWeir(t, "get", "sources", "git", "-n", s.ns, "-o", "json")
	var list struct {
		APIVersion, Kind string
		Items            []sourcev1.GitRepository
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	if list.Kind != "List" || len(list.Items) != 1 {
		t.Fatalf("-o json printed a %s of %d items, want a List of 1", list.Kind, len(list.Items))
	}
	item := list.Items[0]
	if item.APIVersion != "source.toolkit.fluxcd.io/v1" || item.Kind != "GitRepository" || item.Name != s.name {
		t.Errorf("-o json item is %s %s %s", item.APIVersion, item.Kind, item.Name)
	}
	if item.Status.Artifact == nil || item.Status.Artifact.Revision != "main@sha1:"+s.commit {
		t.Errorf("-o json artifact is %+v, want revision main@sha1:%s", item.Status.Artifact, s.commit)
	}
}

func TestReconcileFetchesTheNewCommit(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	next := s.repo.Commit("main", map[string]string{"app/config.yaml": "replicas: 2\n"}, "scale up").String()

	code, out, errOut := runWeir(t, "reconcile", "source", "git", s.name, "-n", s.ns, "--timeout", "1m")

	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	want := "► annotating GitRepository " + s.name + " in " + s.ns + " namespace\n" +
		"✔ GitRepository annotated\n" +
		"◎ waiting for GitRepository reconciliation\n" +
		"✔ fetched revision main@sha1:" + next + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// The output was not ahead of the cluster.
	if obj := s.get(t); obj.Status.Artifact == nil || obj.Status.Artifact.Revision != "main@sha1:"+next {
		t.Errorf("the GitRepository's artifact is %+v after the reconcile", obj.Status.Artifact)
	}
}

func TestReconcileOfAMissingBranchFailsWithTheReadyMessage(t *testing.T) {
	s := newLiveSource(t, "podinfo")
	createGitRepository(t, s.ns, "broken", s.url, "nope")

	code, _, errOut := runWeir(t, "reconcile", "source", "git", "broken", "-n", s.ns, "--timeout", "1m")

	if code == 0 {
		t.Fatal("exit code 0 for a branch that does not exist")
	}
	broken := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "broken"}, broken); err != nil {
		t.Fatal(err)
	}
	ready := conditions.Get(broken, meta.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "unable to resolve branch 'nope'") {
		t.Fatalf("Ready condition is %+v, want False: unable to resolve branch 'nope'", ready)
	}
	want := "✗ GitRepository " + s.ns + "/broken failed to reconcile: " + ready.Message + "\n"
	if errOut != want {
		t.Errorf("stderr is\n%q\nwant\n%q", errOut, want)
	}
}

func TestSuspendAndResume(t *testing.T) {
	s := newLiveSource(t, "podinfo")

	out := mustRunWeir(t, "suspend", "source", "git", s.name, "-n", s.ns)

	if want := "► suspending source git " + s.name + " in " + s.ns + " namespace\n✔ source git suspended\n"; out != want {
		t.Errorf("suspend printed\n%s\nwant\n%s", out, want)
	}
	if !s.get(t).Spec.Suspend {
		t.Fatal("spec.suspend is false after suspend")
	}
	out = mustRunWeir(t, "get", "sources", "git", s.name, "-n", s.ns)
	if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) < 4 || f[2] != "True" {
		t.Errorf("get does not show the source suspended:\n%s", out)
	}
	code, _, errOut := runWeir(t, "reconcile", "source", "git", s.name, "-n", s.ns, "--timeout", "1m")
	if code == 0 || !strings.Contains(errOut, "resource is suspended") {
		t.Errorf("reconcile of a suspended source: exit code %d, stderr %q", code, errOut)
	}

	// A commit pushed while suspended is fetched on resume: the interval
	// is an hour, so only resume's reconcile request can fetch it.
	next := s.repo.Commit("main", map[string]string{"app/config.yaml": "replicas: 3\n"}, "while suspended").String()
	out = mustRunWeir(t, "resume", "source", "git", s.name, "-n", s.ns, "--timeout", "1m")

	want := "► resuming source git " + s.name + " in " + s.ns + " namespace\n" +
		"✔ source git resumed\n" +
		"◎ waiting for GitRepository reconciliation\n" +
		"✔ GitRepository " + s.name + " reconciliation completed\n" +
		"✔ fetched revision main@sha1:" + next + "\n"
	if out != want {
		t.Errorf("resume printed\n%s\nwant\n%s", out, want)
	}
	obj := s.get(t)
	if obj.Spec.Suspend {
		t.Error("spec.suspend is true after resume")
	}
	if at := obj.Annotations[meta.ReconcileRequestAnnotation]; at == "" || obj.Status.LastHandledReconcileAt != at {
		t.Errorf("resume requested a reconcile at %q, the controller handled %q", at, obj.Status.LastHandledReconcileAt)
	}
	if obj.Status.Artifact == nil || obj.Status.Artifact.Revision != "main@sha1:"+next {
		t.Errorf("artifact after resume is %+v, want main@sha1:%s", obj.Status.Artifact, next)
	}
}

func TestInstallPrintsAndAppliesTheCRDs(t *testing.T) {
	out := mustRunWeir(t, "install", "--export", "--crds-only")

	var exported []string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("install --export is not a YAML stream: %v", err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			t.Fatalf("install --export printed a document that is not YAML: %v\n%s", err, doc)
		}
		if crd.Kind == "CustomResourceDefinition" {
			exported = append(exported, crd.Name)
		}
	}
	var onCluster apiextensionsv1.CustomResourceDefinitionList
	if err := env.Client.List(context.Background(), &onCluster); err != nil {
		t.Fatal(err)
	}
	var installed []string
	for _, crd := range onCluster.Items {
		installed = append(installed, crd.Name)
	}
	slices.Sort(exported)
	slices.Sort(installed)
	if !slices.Equal(exported, installed) || !slices.Contains(exported, "gitrepositories.source.toolkit.fluxcd.io") {
		t.Errorf("install --export printed the CRDs\n%v\nthe cluster has\n%v", exported, installed)
	}

	// Installing over an installation succeeds and says so.
	if out := mustRunWeir(t, "install", "--crds-only"); !strings.HasSuffix(out, "✔ installed\n") {
		t.Errorf("install printed\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out := mustRunWeir(t, "version")

	if !strings.HasPrefix(out, "weir "+version.Version+"\n") {
		t.Errorf("version printed\n%s\nwant it to begin with weir %s", out, version.Version)
	}
	// The Kubernetes version it names is the one the local control plane runs.
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	server, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if server.GitVersion != localcluster.KubernetesVersion || !strings.Contains(out, "\nlocal control plane: kubernetes "+server.GitVersion+"\n") {
		t.Errorf("version printed\n%s\nthe local control plane runs %s", out, server.GitVersion)
	}
}

// TestInstanceVerbs: reconcile, get, suspend and resume act on a
// FluxInstance as on Flux's kinds; suspending sets Flux Operator's
// fluxcd.controlplane.io/reconcile annotation, as its CLI does.
func TestInstanceVerbs(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "fleet")
	repo.Commit("main", map[string]string{
		"clusters/main/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: synced\n  namespace: " + ns + "\n",
	}, "first")
	fi := &controlplanev1.FluxInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controlplanev1.InstanceName},
		Spec: controlplanev1.FluxInstanceSpec{
			Distribution: controlplanev1.Distribution{Version: "2.x", Registry: "ghcr.io/fluxcd"},
			Sync:         &controlplanev1.Sync{Kind: "GitRepository", URL: git.HTTPURL("fleet"), Ref: "refs/heads/main", Path: "clusters/main"},
		},
	}
	if err := env.Client.Create(ctx, fi); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fi) })

	out := mustRunWeir(t, "reconcile", "instance", "flux", "-n", ns, "--timeout", "1m")
	if !strings.Contains(out, "◎ waiting for FluxInstance reconciliation") || !strings.Contains(out, "✔ applied revision ") || !strings.Contains(out, "@sha256:") {
		t.Errorf("reconcile instance printed\n%s", out)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "synced"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the instance's sync did not apply clusters/main: %v", err)
	}
	out = mustRunWeir(t, "get", "fi", "-n", ns)
	if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) < 4 || f[0] != "flux" || f[2] != "False" || f[3] != "True" {
		t.Errorf("get fi does not show flux Ready and not suspended:\n%s", out)
	}
	mustRunWeir(t, "suspend", "instance", "flux", "-n", ns)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fi), fi); err != nil {
		t.Fatal(err)
	}
	if got := fi.Annotations[controlplanev1.ReconcileAnnotation]; got != "disabled" {
		t.Errorf("after suspend, %s = %q, want disabled", controlplanev1.ReconcileAnnotation, got)
	}
	out = mustRunWeir(t, "resume", "instance", "flux", "-n", ns, "--timeout", "1m")
	if !strings.Contains(out, "✔ instance resumed") || !strings.Contains(out, "reconciliation completed") {
		t.Errorf("resume instance printed\n%s", out)
	}
}

// TestTriggerReceiver: `weir get receivers` shows a Ready Receiver and
// `weir trigger receiver` posts a signed request that reconciles its
// GitRepository.
func TestTriggerReceiver(t *testing.T) {
	ctx := context.Background()
	s := newLiveSource(t, "hooked")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "token"}, StringData: map[string]string{"token": "t0ken-for-trigger"}}
	rcv := &notificationv1.Receiver{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "github"},
		Spec: notificationv1.ReceiverSpec{
			Type: notificationv1.GitHubReceiver, Events: []string{"push"},
			SecretRef: &meta.LocalObjectReference{Name: "token"},
			Resources: []notificationv1.ReceiverResource{{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{
				Kind: sourcev1.GitRepositoryKind, Name: s.name}}},
		},
	}
	for _, o := range []client.Object{secret, rcv} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := mustRunWeir(t, "get", "receivers", "-n", s.ns)
		// A Receiver has no revision: the columns are NAME, SUSPENDED,
		// READY and MESSAGE.
		if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) >= 4 && f[0] == "github" && f[1] == "False" && f[2] == "True" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get receivers does not show the Receiver Ready:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := mustRunWeir(t, "trigger", "receiver", "github", "-n", s.ns, "--url", env.Manager.ReceiverURL)
	if !strings.Contains(out, "► sending a github request to ") || !strings.Contains(out, "✔ the receiver answered 200 OK: reconcile requested for 1 resources") {
		t.Errorf("trigger printed\n%s", out)
	}
	if at := s.get(t).Annotations[meta.ReconcileRequestAnnotation]; at == "" {
		t.Error("the trigger did not request a reconcile of the GitRepository")
	}
}

// TestGetAlertsAndProviders: the static v1beta3 kinds are listed with what
// they say.
func TestGetAlertsAndProviders(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	for _, o := range []client.Object{
		&notificationv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack"},
			Spec: notificationv1beta3.ProviderSpec{Type: "slack", Channel: "flux", Address: "https://hooks.slack.example/x"}},
		&notificationv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "on-call"},
			Spec: notificationv1beta3.AlertSpec{ProviderRef: meta.LocalObjectReference{Name: "slack"}, EventSeverity: "error",
				EventSources: []notificationv1.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "*"}}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRunWeir(t, "get", "alerts", "-n", ns)
	if f := strings.Fields(strings.Split(out, "\n")[1]); strings.Join(f, " ") != "on-call slack error false Kustomization/*" {
		t.Errorf("get alerts printed\n%s", out)
	}
	out = mustRunWeir(t, "get", "alert-providers", "-n", ns)
	if f := strings.Fields(strings.Split(out, "\n")[1]); strings.Join(f, " ") != "slack slack flux false" {
		t.Errorf("get alert-providers printed\n%s", out)
	}

	// Suspending and resuming them is a patch of spec.suspend; nothing
	// reconciles them, so resume returns at once without a request.
	mustRunWeir(t, "suspend", "alert", "on-call", "-n", ns)
	mustRunWeir(t, "suspend", "alert-provider", "slack", "-n", ns)
	a, p := &notificationv1beta3.Alert{}, &notificationv1beta3.Provider{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "on-call"}, a); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "slack"}, p); err != nil {
		t.Fatal(err)
	}
	if !a.Spec.Suspend || !p.Spec.Suspend {
		t.Errorf("after weir suspend: Alert suspend=%v, Provider suspend=%v, want both true", a.Spec.Suspend, p.Spec.Suspend)
	}
	if f := strings.Fields(strings.Split(mustRunWeir(t, "get", "alerts", "-n", ns), "\n")[1]); len(f) < 4 || f[3] != "true" {
		t.Errorf("get alerts after suspend: %v, want SUSPENDED true", f)
	}
	out = mustRunWeir(t, "resume", "alert", "on-call", "-n", ns)
	if !strings.Contains(out, "✔ alert resumed") {
		t.Errorf("resume alert printed\n%s", out)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "on-call"}, a); err != nil {
		t.Fatal(err)
	}
	if a.Spec.Suspend || a.Annotations[meta.ReconcileRequestAnnotation] != "" {
		t.Errorf("after weir resume: Alert suspend=%v annotations %v, want resumed and no reconcile request", a.Spec.Suspend, a.Annotations)
	}
}
