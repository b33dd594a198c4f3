// Package kubeconfig connects the Kustomization and HelmRelease
// controllers to the remote clusters named by spec.kubeConfig.
//
// Load reads the kubeconfig from a Secret of the object's namespace (key
// spec.kubeConfig.secretRef.key, else "value", else "value.yaml", as Flux
// does) and checks it as Flux's controllers do with their
// --insecure-kubeconfig-exec and --insecure-kubeconfig-tls flags off,
// except that what Flux would silently drop is refused with a message
// that says why: exec and auth-provider plugins (weir runs no programs
// named by a kubeconfig), files on the controller's disk, and
// insecure-skip-tls-verify. spec.kubeConfig.configMapRef (a cloud
// provider's workload identity) is refused: no cloud identity service can
// be reached from weir.
//
// Cache keeps one connection per kubeconfig content and identity, so that
// a Secret that changes gives a new connection at the next reconcile and
// the old one is dropped once no object uses it.
package kubeconfig
