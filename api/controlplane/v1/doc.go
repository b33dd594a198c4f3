// Package v1 holds weir's types for Flux Operator's API group
// fluxcd.controlplane.io/v1: FluxInstance, which declares how Flux (here,
// weir) runs in a cluster and what it syncs, and FluxReport, which reports
// what runs. The types mirror the fields Flux Operator publishes; fields
// weir does not know are kept as written (the CRD preserves them).
//
// +kubebuilder:object:generate=true
// +groupName=fluxcd.controlplane.io
package v1
