// Package kube resolves access to a cluster the way kubectl does and holds
// the scheme of every API type weir reads and writes.
package kube

import (
	"fmt"
	"sync"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	controlplanev1 "github.com/weirhq/weir/api/controlplane/v1"
)

// LeaderLabel is set to "true" on the pod of the replica that leads (the
// pod named by $POD_NAME in the runtime namespace), and removed from the
// others: the Service in front of the artifact store selects it, so that
// artifact requests reach the one replica that serves them.
const LeaderLabel = "weirhq.github.io/leader"

// Scheme returns the scheme that knows Kubernetes' built-in types, CRDs
// and Flux's types: one for the process, made on first use, so that the
// commands that never talk to a cluster (weir build, weir test) do not
// pay for it at start.
var Scheme = sync.OnceValue(newScheme)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(sourcev1.AddToScheme(s))
	utilruntime.Must(kustomizev1.AddToScheme(s))
	utilruntime.Must(helmv2.AddToScheme(s))
	utilruntime.Must(notificationv1.AddToScheme(s))
	utilruntime.Must(notificationv1beta3.AddToScheme(s))
	utilruntime.Must(swapi.AddToScheme(s))
	utilruntime.Must(controlplanev1.AddToScheme(s))
	return s
}

// Config returns the client configuration for kubeconfig and context, as
// kubectl resolves it: an explicit kubeconfig path first, then $KUBECONFIG,
// then ~/.kube/config, then the in-cluster service account.
func Config(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("finding the cluster to talk to (set --kubeconfig or KUBECONFIG): %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}
