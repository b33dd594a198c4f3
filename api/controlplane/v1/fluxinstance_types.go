package v1

import (
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// FluxInstanceKind is the kind of a FluxInstance.
	FluxInstanceKind = "FluxInstance"
	// InstanceName is the only name a FluxInstance may have, as Flux
	// Operator requires: one per cluster.
	InstanceName = "flux"
	// Finalizer is set on a FluxInstance so that deleting it removes what
	// it applied first.
	Finalizer = "fluxcd.controlplane.io/finalizer"
	// ReconcileAnnotation set to "disabled" pauses the reconciliation, and
	// deleting the instance then leaves everything it applied in place.
	ReconcileAnnotation = "fluxcd.controlplane.io/reconcile"
	// ReconcileEveryAnnotation sets the interval between reconciliations
	// (default one hour).
	ReconcileEveryAnnotation = "fluxcd.controlplane.io/reconcileEvery"
	// ReconcileTimeoutAnnotation bounds one reconciliation (default 5m).
	ReconcileTimeoutAnnotation = "fluxcd.controlplane.io/reconcileTimeout"
	// PruneAnnotation set to "disabled" on an applied object keeps it when
	// the instance no longer declares it or is deleted.
	PruneAnnotation = "fluxcd.controlplane.io/prune"
	// DisabledValue is the value that turns an annotation's behaviour off.
	DisabledValue = "disabled"
)

// Component names, as Flux Operator lists them in spec.components.
const (
	SourceController          = "source-controller"
	KustomizeController       = "kustomize-controller"
	HelmController            = "helm-controller"
	NotificationController    = "notification-controller"
	ImageReflectorController  = "image-reflector-controller"
	ImageAutomationController = "image-automation-controller"
	SourceWatcher             = "source-watcher"
)

// FluxInstanceSpec declares the distribution, the components, the cluster's
// shape and the sync.
// +kubebuilder:pruning:PreserveUnknownFields
type FluxInstanceSpec struct {
	// Distribution names the Flux version and registry. weir records it
	// and reports it; the version that runs is weir's own.
	// +required
	Distribution Distribution `json:"distribution"`

	// Components are the controllers to run; empty means source,
	// kustomize, helm and notification.
	// +optional
	Components []Component `json:"components,omitempty"`

	// CommonMetadata is added to every object the instance applies.
	// +optional
	CommonMetadata *CommonMetadata `json:"commonMetadata,omitempty"`

	// Cluster describes the cluster the instance runs in.
	// +optional
	Cluster *Cluster `json:"cluster,omitempty"`

	// Sharding runs controller shards (recorded; not acted on by weir).
	// +optional
	Sharding *Sharding `json:"sharding,omitempty"`

	// Storage sets a persistent volume for artifacts (recorded; weir keeps
	// artifacts in an emptyDir).
	// +optional
	Storage *Storage `json:"storage,omitempty"`

	// Kustomize patches the in-cluster objects before they are applied.
	// +optional
	Kustomize *Kustomize `json:"kustomize,omitempty"`

	// Wait for the applied objects to be ready; default true.
	// +kubebuilder:default:=true
	// +optional
	Wait *bool `json:"wait,omitempty"`

	// MigrateResources moves Flux objects to their newest stored API
	// version; default true (recorded).
	// +kubebuilder:default:=true
	// +optional
	MigrateResources *bool `json:"migrateResources,omitempty"`

	// Sync creates the source and root Kustomization that sync the cluster.
	// +optional
	Sync *Sync `json:"sync,omitempty"`
}

// Distribution names the Flux distribution.
type Distribution struct {
	// Version is a semver range of Flux, such as "2.x" or "2.7.5".
	// +required
	Version string `json:"version"`

	// Registry holds the controller images, such as ghcr.io/fluxcd.
	// +required
	Registry string `json:"registry"`

	// Variant of the images.
	// +kubebuilder:validation:Enum=upstream-alpine;enterprise-alpine;enterprise-distroless;enterprise-distroless-fips
	// +optional
	Variant string `json:"variant,omitempty"`

	// ImagePullSecret is the Secret used to pull the images.
	// +optional
	ImagePullSecret string `json:"imagePullSecret,omitempty"`

	// Artifact is the OCI artifact that holds the distribution's manifests.
	// +kubebuilder:validation:Pattern="^oci://.*$"
	// +optional
	Artifact string `json:"artifact,omitempty"`

	// ArtifactPullSecret is the Secret used to pull Artifact.
	// +optional
	ArtifactPullSecret string `json:"artifactPullSecret,omitempty"`
}

// Component is the name of a Flux controller.
// +kubebuilder:validation:Enum:=source-controller;kustomize-controller;helm-controller;notification-controller;image-reflector-controller;image-automation-controller;source-watcher
type Component string

// ComponentImage is the image of a component that runs.
type ComponentImage struct {
	// Name of the component.
	Name string `json:"name"`
	// Repository of its image.
	Repository string `json:"repository"`
	// Tag of its image.
	Tag string `json:"tag"`
	// Digest of its image, when known.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// CommonMetadata is added to every object the instance applies.
type CommonMetadata struct {
	// Annotations added to every object.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels added to every object.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// Cluster describes the cluster the instance runs in.
type Cluster struct {
	// Domain is the cluster's DNS domain.
	// +kubebuilder:default:=cluster.local
	// +optional
	Domain string `json:"domain,omitempty"`

	// Multitenant locks the controllers down: objects that name no
	// service account are applied as TenantDefaultServiceAccount.
	// +kubebuilder:default:=false
	// +optional
	Multitenant bool `json:"multitenant,omitempty"`

	// MultitenantWorkloadIdentity (recorded).
	// +optional
	MultitenantWorkloadIdentity bool `json:"multitenantWorkloadIdentity,omitempty"`

	// TenantDefaultServiceAccount is impersonated, in multitenant mode, by
	// Kustomizations and HelmReleases that name no service account.
	// +optional
	TenantDefaultServiceAccount string `json:"tenantDefaultServiceAccount,omitempty"`

	// TenantDefaultDecryptionServiceAccount (recorded).
	// +optional
	TenantDefaultDecryptionServiceAccount string `json:"tenantDefaultDecryptionServiceAccount,omitempty"`

	// TenantDefaultKubeConfigServiceAccount (recorded).
	// +optional
	TenantDefaultKubeConfigServiceAccount string `json:"tenantDefaultKubeConfigServiceAccount,omitempty"`

	// ObjectLevelWorkloadIdentity (recorded).
	// +optional
	ObjectLevelWorkloadIdentity bool `json:"objectLevelWorkloadIdentity,omitempty"`

	// NetworkPolicy installs the NetworkPolicies Flux ships.
	// +kubebuilder:default:=true
	NetworkPolicy bool `json:"networkPolicy"`

	// Type of the cluster.
	// +kubebuilder:validation:Enum:=kubernetes;openshift;aws;azure;gcp
	// +kubebuilder:default:=kubernetes
	// +optional
	Type string `json:"type,omitempty"`

	// Size sets the controllers' concurrency and resources.
	// +kubebuilder:validation:Enum:=small;medium;large
	// +optional
	Size string `json:"size,omitempty"`
}

// Sharding runs controller shards.
type Sharding struct {
	// Key is the sharding label.
	// +kubebuilder:default:=sharding.fluxcd.io/key
	// +optional
	Key string `json:"key,omitempty"`
	// Shards are the shard names.
	// +kubebuilder:validation:MinItems=1
	Shards []string `json:"shards"`
	// Storage of the shards' artifacts.
	// +kubebuilder:validation:Enum:=ephemeral;persistent
	// +optional
	Storage string `json:"storage,omitempty"`
}

// Storage is a persistent volume for artifacts.
type Storage struct {
	// Class is the storage class.
	Class string `json:"class"`
	// Size is the volume's size.
	Size string `json:"size"`
}

// Kustomize patches the in-cluster objects.
type Kustomize struct {
	// Patches are strategic merge or JSON 6902 patches with targets.
	// +optional
	Patches []kustomize.Patch `json:"patches,omitempty"`
}

// Sync declares the source and root Kustomization that sync the cluster.
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'gcp' || self.kind == 'OCIRepository' || self.kind == 'Bucket'",message="sync.provider 'gcp' is only supported for OCIRepository and Bucket"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'github' || self.kind == 'GitRepository'",message="sync.provider 'github' is only supported for GitRepository"
type Sync struct {
	// Name of the source and the Kustomization; default the namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="Sync name is immutable"
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Name string `json:"name,omitempty"`

	// Interval of the source.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +kubebuilder:default:="1m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Kind of the source.
	// +kubebuilder:validation:Enum=OCIRepository;GitRepository;Bucket
	// +required
	Kind string `json:"kind"`

	// URL of the source.
	// +required
	URL string `json:"url"`

	// Ref is a Git reference (refs/heads/main, refs/tags/v1, a commit), an
	// OCI tag, or a bucket's name.
	// +required
	Ref string `json:"ref"`

	// Path in the source that the Kustomization applies.
	// +required
	Path string `json:"path"`

	// PullSecret is the Secret the source authenticates with.
	// +optional
	PullSecret string `json:"pullSecret,omitempty"`

	// Provider of the source's credentials.
	// +kubebuilder:validation:Enum=generic;aws;azure;gcp;github
	// +optional
	Provider string `json:"provider,omitempty"`
}

// ResourceInventory lists the objects an instance applied.
type ResourceInventory struct {
	// Entries of the inventory.
	Entries []ResourceRef `json:"entries"`
}

// ResourceRef names one applied object.
type ResourceRef struct {
	// ID is <namespace>_<name>_<group>_<kind>.
	ID string `json:"id"`
	// Version is the object's API version.
	Version string `json:"v"`
}

// FluxInstanceStatus is what the controller observed.
type FluxInstanceStatus struct {
	meta.ReconcileRequestStatus `json:",inline"`

	// ObservedGeneration is the last generation reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions of the instance.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastAttemptedRevision is the revision last tried.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// LastAppliedRevision is the revision last applied.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`

	// LastArtifactRevision is the distribution artifact's revision.
	// +optional
	LastArtifactRevision string `json:"lastArtifactRevision,omitempty"`

	// Components are the images that run.
	// +optional
	Components []ComponentImage `json:"components,omitempty"`

	// Inventory lists what the instance applied.
	// +optional
	Inventory *ResourceInventory `json:"inventory,omitempty"`
}

// FluxInstance declares how Flux runs in a cluster and what it syncs.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fluxcd;fluxcd-appliers
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description=""
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description=""
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message",description=""
// +kubebuilder:printcolumn:name="Revision",type="string",JSONPath=".status.lastAttemptedRevision",description=""
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'flux'",message="the only accepted name for a FluxInstance is 'flux'"
type FluxInstance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FluxInstanceSpec   `json:"spec,omitempty"`
	Status FluxInstanceStatus `json:"status,omitempty"`
}

// FluxInstanceList is a list of FluxInstances.
// +kubebuilder:object:root=true
type FluxInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FluxInstance `json:"items"`
}

// GetConditions returns the status conditions.
func (in *FluxInstance) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions sets the status conditions.
func (in *FluxInstance) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// ComponentNames are the components the instance runs, with Flux
// Operator's default when none is listed.
func (in *FluxInstance) ComponentNames() []string {
	if len(in.Spec.Components) == 0 {
		return []string{SourceController, KustomizeController, HelmController, NotificationController}
	}
	out := make([]string, len(in.Spec.Components))
	for i, c := range in.Spec.Components {
		out[i] = string(c)
	}
	return out
}

// ClusterOrDefault is spec.cluster, or Flux Operator's defaults when unset.
func (in *FluxInstance) ClusterOrDefault() Cluster {
	if in.Spec.Cluster == nil {
		return Cluster{Type: "kubernetes", Domain: "cluster.local", NetworkPolicy: true}
	}
	c := *in.Spec.Cluster
	if c.Domain == "" {
		c.Domain = "cluster.local"
	}
	return c
}

// Disabled tells whether the reconcile annotation pauses the instance.
func (in *FluxInstance) Disabled() bool {
	return strings.EqualFold(in.GetAnnotations()[ReconcileAnnotation], DisabledValue)
}

// Interval is the time between reconciliations: the reconcileEvery
// annotation, else one hour.
func (in *FluxInstance) Interval() time.Duration {
	return annotationDuration(in.GetAnnotations()[ReconcileEveryAnnotation], time.Hour)
}

// Timeout bounds one reconciliation: the reconcileTimeout annotation,
// else five minutes.
func (in *FluxInstance) Timeout() time.Duration {
	return annotationDuration(in.GetAnnotations()[ReconcileTimeoutAnnotation], 5*time.Minute)
}

func annotationDuration(v string, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return def
	}
	return d
}

func init() {
	SchemeBuilder.Register(&FluxInstance{}, &FluxInstanceList{})
}
