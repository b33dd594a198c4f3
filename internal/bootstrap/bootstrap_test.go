package bootstrap_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/bootstrap"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// run bootstraps and returns the result and the lines it printed.
func run(t *testing.T, o bootstrap.Options) (*bootstrap.Result, string) {
	t.Helper()
	var out strings.Builder
	say := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := bootstrap.Run(ctx, env.Client, o, say)
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out.String())
	}
	return res, out.String()
}

// resourceVersions reads what each object is at: its generation when it
// has one (weir writes the FluxInstance's status on its own), else its
// resourceVersion.
func resourceVersions(t *testing.T, objs ...client.Object) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("reading %T %s: %v", o, o.GetName(), err)
		}
		out = append(out, install.SpecVersion(o))
	}
	return out
}

func appRepo(t *testing.T, git *testenv.GitServer, name string) (apps, commit string) {
	apps = env.Namespace(t)
	repo := git.Repo(t, name)
	commit = repo.Commit("main", map[string]string{
		"kubernetes/flux/cluster/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: synced\n  namespace: " + apps + "\n",
	}, "first").String()
	return apps, commit
}

// cleanup removes what a bootstrap made, so that the next test starts
// from a cluster without weir's installation.
func cleanup(t *testing.T, o install.Options) {
	t.Cleanup(func() {
		ctx := context.Background()
		fi := &v1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: v1.InstanceName}}
		_ = env.Client.Delete(ctx, fi)
		for i := 0; i < 100; i++ {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fi), fi); apierrors.IsNotFound(err) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, obj := range []client.Object{
			&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: install.Namespace}},
			&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: install.Namespace}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: "flux-system"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: "sops-age"}},
		} {
			_ = env.Client.Delete(ctx, obj)
		}
		o.Namespace = install.Namespace
		if err := install.UninstallComponents(ctx, env.Client, o); err != nil {
			t.Errorf("removing weir's components: %v", err)
		}
	})
}

// Bootstrapping over SSH with a generated deploy key and an age key
// installs weir, stores the keys, applies a FluxInstance and waits for
// the first sync; a second run changes nothing, says so, and keeps the
// deploy key.
func TestBootstrapTwiceOverSSH(t *testing.T) {
	git := testenv.NewGitServer(t, "", "")
	apps, commit := appRepo(t, git, "home-ops")
	identity, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ageFile := filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(ageFile, []byte("# public key: "+identity.Recipient().String()+"\n"+identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := bootstrap.Options{
		URL: git.SSHURL("home-ops"), Branch: "main", Path: "kubernetes/flux/cluster",
		GenerateKey: true, SOPSAgeKeyFile: ageFile,
		Install: install.Options{Image: "weir:test"}, Timeout: 2 * time.Minute,
	}
	cleanup(t, o.Install)

	first, out := run(t, o)
	if first.Revision != "main@sha1:"+commit {
		t.Errorf("first sync applied %q, want main@sha1:%s", first.Revision, commit)
	}
	if !strings.HasPrefix(first.PublicKey, "ssh-ed25519 ") || !strings.Contains(out, "✔ deploy key: ssh-ed25519 ") {
		t.Errorf("the deploy key's public half is not printed:\n%s", out)
	}
	if len(first.Changed) == 0 {
		t.Errorf("the first run reports no change:\n%s", out)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: "flux-system"}}
	sops := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: "sops-age"}}
	fi := &v1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: v1.InstanceName}}
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: install.Namespace, Name: install.Namespace}}
	before := resourceVersions(t, secret, sops, fi, ks)
	host := strings.TrimPrefix(git.SSHURL("x"), "ssh://git@")
	host = host[:strings.Index(host, "/")]
	if !strings.Contains(string(secret.Data["known_hosts"]), host[strings.LastIndex(host, ":")+1:]) || len(secret.Data["identity"]) == 0 ||
		string(secret.Data["identity.pub"]) != first.PublicKey {
		t.Errorf("the deploy key Secret holds %v; want identity, identity.pub and the server's known_hosts line", keys(secret.Data))
	}
	if !strings.Contains(string(sops.Data["age.agekey"]), identity.String()) {
		t.Errorf("Secret sops-age does not hold the age key under age.agekey")
	}
	if fi.Spec.Sync == nil || fi.Spec.Sync.Ref != "refs/heads/main" || fi.Spec.Sync.PullSecret != "flux-system" {
		t.Errorf("the FluxInstance's sync is %+v", fi.Spec.Sync)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: apps, Name: "synced"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the sync did not apply the repository: %v", err)
	}

	t.Logf("first run:\n%s", out)
	second, out := run(t, o)
	t.Logf("second run:\n%s", out)
	if len(second.Changed) != 0 {
		t.Errorf("the second run changed %v:\n%s", second.Changed, out)
	}
	if second.PublicKey != first.PublicKey {
		t.Errorf("the second run made a new deploy key")
	}
	if !strings.Contains(out, "✔ weir unchanged") || !strings.Contains(out, "✔ FluxInstance flux-system/flux unchanged") {
		t.Errorf("the second run does not say that nothing changed:\n%s", out)
	}
	if after := resourceVersions(t, secret, sops, fi); strings.Join(after, " ") != strings.Join(before[:3], " ") {
		t.Errorf("the Secrets and the FluxInstance went from %v to %v", before[:3], after)
	}
	if !conditions.IsTrue(ks, meta.ReadyCondition) {
		t.Errorf("the sync is not Ready after the second run: %s", conditions.GetMessage(ks, meta.ReadyCondition))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Bootstrapping over HTTPS with a password and --no-instance applies a
// GitRepository and a Kustomization with the credentials Secret; run
// twice, the second changes nothing.
func TestBootstrapOverHTTPSWithoutAnInstance(t *testing.T) {
	git := testenv.NewGitServer(t, "weir", "s3cret-t0ken")
	_, commit := appRepo(t, git, "fleet")
	o := bootstrap.Options{
		URL: git.HTTPURL("fleet"), Branch: "main", Path: "kubernetes/flux/cluster",
		Username: "weir", Password: "s3cret-t0ken", NoInstance: true,
		Install: install.Options{Image: "weir:test"}, Timeout: 2 * time.Minute,
	}
	cleanup(t, o.Install)
	res, out := run(t, o)
	if res.Revision != "main@sha1:"+commit {
		t.Errorf("first sync applied %q, want main@sha1:%s\n%s", res.Revision, commit, out)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: install.Namespace, Name: v1.InstanceName}, &v1.FluxInstance{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("--no-instance made a FluxInstance: %v", err)
	}
	gr := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: install.Namespace, Name: install.Namespace}, gr); err != nil {
		t.Fatal(err)
	}
	if gr.Spec.SecretRef == nil || gr.Spec.SecretRef.Name != "flux-system" {
		t.Errorf("the GitRepository's secretRef is %+v", gr.Spec.SecretRef)
	}
	again, out := run(t, o)
	if len(again.Changed) != 0 {
		t.Errorf("the second run changed %v:\n%s", again.Changed, out)
	}
}
