// Command webhook measures push-to-deploy through weir's webhook
// receiver: a commit is pushed to a loopback Git server, a GitHub push
// payload signed with the Receiver's token is posted, and the time until
// the Kustomization is Ready at the new commit is recorded, for N rounds.
// The source and the Kustomization have an interval of an hour, so only
// the webhook can make them see the commit. weir runs as `weir
// controller`, a process of its own, on a fresh local control plane.
//
//	go run ./bench/webhook                # 20 rounds
//	go run ./bench/webhook -rounds 50 -weir /tmp/weir
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/gitserver"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
)

const (
	ns    = "flux-system"
	token = "bench-webhook-token"
)

func main() {
	rounds := flag.Int("rounds", 20, "how many pushes to time")
	weir := flag.String("weir", "", "the weir binary (default: built from this checkout)")
	flag.Parse()
	if err := run(*rounds, *weir); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

func run(rounds int, weir string) error {
	ctrl.SetLogger(logr.Discard())
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "weir-bench-webhook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if weir == "" {
		weir = filepath.Join(tmp, "weir")
		build := exec.Command("go", "build", "-o", weir, "./cmd/weir")
		// As released (make build, the image): static, which keeps the
		// binary's resident pages some 50 MiB smaller (see the Makefile).
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building weir: %w", err)
		}
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{StateDir: filepath.Join(tmp, "cluster"), Nodes: 1})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	c, err := client.New(cluster.RESTConfig(), client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return err
	}
	if err := install.Install(ctx, c); err != nil {
		return err
	}

	work := filepath.Join(tmp, "repo")
	repo := gitserver.NewMemoryRepository()
	commit := func(i int) (string, error) {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pushed\n  namespace: default\ndata:\n  round: %q\n", strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(work, "apps"), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(work, "apps", "cm.yaml"), []byte(cm), 0o644); err != nil {
			return "", err
		}
		h, err := gitserver.Snapshot(repo, "main", work, "round "+strconv.Itoa(i))
		return h.String(), err
	}
	first, err := commit(0)
	if err != nil {
		return err
	}
	srv := gitserver.New()
	srv.Add("cluster", repo)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base, err := srv.Start(sctx, "127.0.0.1:0")
	if err != nil {
		return err
	}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(tmp, "weir.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(weir, "controller", "--kubeconfig", cluster.Kubeconfig, "--leader-elect=false",
		"--metrics-addr=0", "--health-addr=0", "--storage-path", filepath.Join(tmp, "artifacts"),
		"--storage-addr=127.0.0.1:0", "--receiver-addr", addr)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	hour := metav1.Duration{Duration: time.Hour}
	objs := []client.Object{
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cluster"},
			Spec: sourcev1.GitRepositorySpec{URL: base + "/cluster.git", Interval: hour, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}},
		&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
			Spec: kustomizev1.KustomizationSpec{Interval: hour, Path: "./apps", Prune: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "cluster"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "receiver-token"}, StringData: map[string]string{"token": token}},
		&notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "github"},
			Spec: notificationv1.ReceiverSpec{Type: notificationv1.GitHubReceiver, Events: []string{"push"},
				SecretRef: &meta.LocalObjectReference{Name: "receiver-token"},
				Resources: []notificationv1.ReceiverResource{{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{
					Kind: sourcev1.GitRepositoryKind, Name: "cluster"}}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	if err := waitApplied(ctx, c, first, 2*time.Minute); err != nil {
		return err
	}
	rcv := &notificationv1.Receiver{}
	if err := waitFor(ctx, time.Minute, func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "github"}, rcv) == nil && rcv.Status.WebhookPath != ""
	}); err != nil {
		return errors.New("the Receiver has no webhook path")
	}
	url := "http://" + addr + rcv.Status.WebhookPath

	var took []time.Duration
	for i := 1; i <= rounds; i++ {
		h, err := commit(i)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := postPush(url, h); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if err := waitApplied(ctx, c, h, time.Minute); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	median := took[len(took)/2]
	p95 := took[min(len(took)-1, (len(took)*95+99)/100-1)]
	fmt.Printf("push to Kustomization Ready at the new commit, through a signed GitHub webhook, %d rounds:\n", rounds)
	fmt.Printf("  median %s, p95 %s, min %s, max %s\n", median.Round(time.Millisecond), p95.Round(time.Millisecond),
		took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	return nil
}

// postPush posts a GitHub push event for commit, signed with the token.
func postPush(url, commit string) error {
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"bench/cluster"},"pusher":{"name":"bench"}}`, commit))
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// waitApplied waits until the Kustomization is Ready at commit.
func waitApplied(ctx context.Context, c client.Client, commit string, timeout time.Duration) error {
	ks := &kustomizev1.Kustomization{}
	err := waitFor(ctx, timeout, func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "apps"}, ks) == nil &&
			ks.Status.LastAppliedRevision == "main@sha1:"+commit && conditions.IsReady(ks)
	})
	if err != nil {
		return fmt.Errorf("the Kustomization did not apply %s (at %s): %w", commit, ks.Status.LastAppliedRevision, err)
	}
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
