package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

// `weir diff ks` of a Kustomization with spec.kubeConfig compares the
// files with the remote cluster it applies to, not with weir's.
func TestDiffKustomizationComparesWithItsRemoteCluster(t *testing.T) {
	remote := testenv.StartRemote(t, false)
	ns := env.Namespace(t)
	remote.Namespace(t, ns)
	env.KubeconfigSecret(t, ns, "prod-kubeconfig", "value", remote.Kubeconfig)
	ctx := context.Background()
	// The same ConfigMap in weir's cluster: compared there, it would be
	// reported as drifted (no ownership labels), not created.
	if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./deploy",
			TargetNamespace: ns,
			Suspend:         true,
			KubeConfig:      &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
		},
	}
	if err := env.Client.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  k: v\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runWeir(t, "diff", "ks", "prod", "--path", dir, "-n", ns)
	if code != 1 || !strings.Contains(out, "► ConfigMap/"+ns+"/settings created") {
		t.Errorf("want the ConfigMap reported as created in the remote cluster (exit 1), got exit %d:\n%s%s", code, out, errOut)
	}
}
