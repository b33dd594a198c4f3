package helm

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kubectl/pkg/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// restGetter gives the Helm SDK a cluster connection built from a
// rest.Config, without a kubeconfig file. Discovery is cached in memory
// and shared by every release acting with the same identity, so that an
// install does not list the API groups again.
type restGetter struct {
	config    *rest.Config
	namespace string
	shared    *sharedDiscovery
}

// sharedDiscovery is one identity's cached discovery and REST mapper, and
// a controller-runtime client built on them.
type sharedDiscovery struct {
	once   sync.Once
	client discovery.CachedDiscoveryInterface
	mapper meta.ResettableRESTMapper
	err    error

	kubeOnce sync.Once
	kube     client.Client
	kubeErr  error

	// validators are the identity's object validators by field
	// validation directive (see validatingFactory).
	validatorMu sync.Mutex
	validators  map[string]validation.Schema
}

// kubeClient returns the identity's client, made once.
func (s *sharedDiscovery) kubeClient(cfg *rest.Config, scheme *runtime.Scheme) (client.Client, error) {
	s.kubeOnce.Do(func() {
		_, mapper, err := s.get(cfg)
		if err != nil {
			s.kubeErr = err
			return
		}
		s.kube, s.kubeErr = client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper})
	})
	if s.kubeErr != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", s.kubeErr)
	}
	return s.kube, nil
}

func (s *sharedDiscovery) get(cfg *rest.Config) (discovery.CachedDiscoveryInterface, meta.ResettableRESTMapper, error) {
	s.once.Do(func() {
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			s.err = err
			return
		}
		s.client = memory.NewMemCacheClient(dc)
		s.mapper = restmapper.NewDeferredDiscoveryRESTMapper(s.client)
	})
	return s.client, s.mapper, s.err
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	dc, _, err := g.shared.get(g.config)
	return dc, err
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	_, m, err := g.shared.get(g.config)
	return m, err
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	overrides := &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}}
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(), overrides)
}

// NewRESTClientGetter returns a connection to the cluster of cfg for the
// Helm SDK, acting in namespace: what `helm` gets from a kubeconfig.
func NewRESTClientGetter(cfg *rest.Config, namespace string) genericclioptions.RESTClientGetter {
	return &restGetter{config: cfg, namespace: namespace, shared: &sharedDiscovery{}}
}
