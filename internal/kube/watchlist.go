package kube

import (
	"os"

	clientfeatures "k8s.io/client-go/features"
)

// watchListEnv is the variable client-go reads its WatchListClient gate
// from; set, it decides, as for any client-go program.
const watchListEnv = "KUBE_FEATURE_WatchListClient"

// Informers in weir list, then watch, as Flux's controllers do (client-go
// 1.34), rather than stream their initial objects through a watch
// (client-go's WatchListClient, on by default since 1.35). A streamed
// first sync ends with a bookmark the API server's watch cache sends on
// its bookmark timer, about once a second: every informer weir started
// took a second or more to sync on an idle cluster. That was the
// manager's caches twice at each start (before and after the leader
// election) and each kind a Kustomization's health check first watches,
// on the dependency chain's clock. Setting KUBE_FEATURE_WatchListClient
// chooses otherwise.
func init() {
	if _, set := os.LookupEnv(watchListEnv); set {
		return
	}
	if g, ok := clientfeatures.FeatureGates().(interface {
		Set(clientfeatures.Feature, bool) error
	}); ok {
		_ = g.Set(clientfeatures.WatchListClient, false)
	}
}
