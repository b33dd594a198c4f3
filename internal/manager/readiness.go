package manager

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// reconciledKinds are the kinds weir's controllers reconcile, each with
// the name of its readiness check and the component that reconciles it.
var reconciledKinds = []struct {
	check     string
	obj       client.Object
	component string
}{
	{"gitrepositories", &sourcev1.GitRepository{}, "source-controller"},
	{"ocirepositories", &sourcev1.OCIRepository{}, "source-controller"},
	{"buckets", &sourcev1.Bucket{}, "source-controller"},
	{"helmrepositories", &sourcev1.HelmRepository{}, "source-controller"},
	{"helmcharts", &sourcev1.HelmChart{}, "source-controller"},
	{"kustomizations", &kustomizev1.Kustomization{}, "kustomize-controller"},
	{"helmreleases", &helmv2.HelmRelease{}, "helm-controller"},
	{"artifactgenerators", &swapi.ArtifactGenerator{}, "source-watcher"},
}

// listErrors keeps the last error of each informer's list or watch, by
// the type it lists, for the readiness checks to give.
type listErrors struct {
	mu   sync.Mutex
	last map[string]error
}

// handle is cache.Options.DefaultWatchErrorHandler: it keeps the error and
// logs it as client-go does.
func (l *listErrors) handle(ctx context.Context, r *toolscache.Reflector, err error) {
	l.mu.Lock()
	if l.last == nil {
		l.last = map[string]error{}
	}
	l.last[r.TypeDescription()] = err
	l.mu.Unlock()
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
}

func (l *listErrors) get(obj client.Object) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[reflect.TypeOf(obj).String()]
}

// cacheSynced is the readiness check of one reconciled kind: it fails
// until the kind's informer has listed every object, that is while its
// controller has not started. A standby replica, which runs no
// controllers, is ready.
func cacheSynced(mgr ctrl.Manager, leaderElection bool, obj client.Object, errs *listErrors) func(*http.Request) error {
	kind := reflect.TypeOf(obj).Elem().Name()
	return func(req *http.Request) error {
		if leaderElection {
			select {
			case <-mgr.Elected():
			default:
				return nil
			}
		}
		inf, err := mgr.GetCache().GetInformer(req.Context(), obj, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("the %s controller is not running: %w", kind, err)
		}
		if inf.HasSynced() {
			return nil
		}
		if err := errs.get(obj); err != nil {
			return fmt.Errorf("the %s controller is not running: listing %s objects fails: %s", kind, kind, strings.TrimSpace(err.Error()))
		}
		return fmt.Errorf("the %s controller is not running: its %s objects are not listed yet", kind, kind)
	}
}

// controllersStarted is started by the manager with the controllers, that
// is once every informer created at setup has synced: until then no
// controller runs, whichever kind holds them up.
type controllersStarted struct{ started atomic.Bool }

func (c *controllersStarted) Start(ctx context.Context) error {
	c.started.Store(true)
	<-ctx.Done()
	return nil
}

// NeedLeaderElection is true: the controllers run on the leader only.
func (c *controllersStarted) NeedLeaderElection() bool { return true }

// check is the readiness check "controllers".
func (c *controllersStarted) check(mgr ctrl.Manager, leaderElection bool) func(*http.Request) error {
	return func(*http.Request) error {
		if leaderElection {
			select {
			case <-mgr.Elected():
			default:
				return nil
			}
		}
		if !c.started.Load() {
			return fmt.Errorf("no controller runs yet: the informers of every kind must list their objects first")
		}
		return nil
	}
}
