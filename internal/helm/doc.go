// Package helm reconciles Flux HelmRelease objects (helm.toolkit.fluxcd.io/v2)
// with the Helm SDK: it loads the chart from the artifact of an
// OCIRepository or HelmChart, composes the values, installs, upgrades,
// tests, remediates and uninstalls the release, stored in Secrets as the
// helm command does, and reports status in Flux's shape. Dependencies go
// through the dependency graph shared with Kustomizations. A HelmRelease
// with spec.kubeConfig installs in the remote cluster its kubeconfig
// Secret names (see internal/kubeconfig): the release, its storage and
// its health are there; its status stays here.
package helm
