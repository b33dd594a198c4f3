package v1

import (
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FluxReportKind is the kind of a FluxReport.
const FluxReportKind = "FluxReport"

// FluxReportSpec is the report: what is installed, what runs, how many
// objects of each kind are Ready, failing or suspended, and the sync.
type FluxReportSpec struct {
	// Distribution is the distribution that runs.
	Distribution FluxDistributionStatus `json:"distribution"`
	// Cluster is the cluster's version, platform and nodes.
	// +optional
	Cluster *ClusterInfo `json:"cluster,omitempty"`
	// Operator is what manages the distribution (weir).
	// +optional
	Operator *OperatorInfo `json:"operator,omitempty"`
	// ComponentsStatus are the running components.
	// +optional
	ComponentsStatus []FluxComponentStatus `json:"components,omitempty"`
	// ReconcilersStatus counts the objects of each kind.
	// +optional
	ReconcilersStatus []FluxReconcilerStatus `json:"reconcilers,omitempty"`
	// SyncStatus is the state of the cluster's sync.
	// +optional
	SyncStatus *FluxSyncStatus `json:"sync,omitempty"`
}

// FluxDistributionStatus is the distribution that runs.
type FluxDistributionStatus struct {
	// Entitlement of the distribution.
	Entitlement string `json:"entitlement"`
	// Status says whether it is installed.
	Status string `json:"status"`
	// Version that runs.
	// +optional
	Version string `json:"version,omitempty"`
	// ManagedBy names what manages it.
	// +optional
	ManagedBy string `json:"managedBy,omitempty"`
}

// ClusterInfo is the cluster's version, platform and nodes.
type ClusterInfo struct {
	// ServerVersion of the API server.
	ServerVersion string `json:"serverVersion"`
	// Platform is os/arch of the nodes.
	Platform string `json:"platform"`
	// Nodes is the number of nodes.
	// +optional
	Nodes int `json:"nodes,omitempty"`
}

// OperatorInfo is what manages the distribution.
type OperatorInfo struct {
	// APIVersion of the FluxInstance it serves.
	APIVersion string `json:"apiVersion"`
	// Version of the operator.
	Version string `json:"version"`
	// Platform it runs on.
	Platform string `json:"platform"`
}

// FluxComponentStatus is one running component.
type FluxComponentStatus struct {
	// Name of the component.
	Name string `json:"name"`
	// Ready tells whether it is available.
	Ready bool `json:"ready"`
	// Status says why or why not.
	Status string `json:"status"`
	// Image that runs.
	Image string `json:"image"`
}

// FluxReconcilerStatus counts the objects of one kind.
type FluxReconcilerStatus struct {
	// APIVersion of the kind.
	APIVersion string `json:"apiVersion"`
	// Kind counted.
	Kind string `json:"kind"`
	// Stats are the counts.
	// +optional
	Stats FluxReconcilerStats `json:"stats,omitempty"`
}

// FluxReconcilerStats are the counts of one kind's objects.
type FluxReconcilerStats struct {
	// Running objects are Ready.
	Running int `json:"running"`
	// Failing objects are not Ready.
	Failing int `json:"failing"`
	// Suspended objects are suspended.
	Suspended int `json:"suspended"`
	// TotalSize of the artifacts, for sources.
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
}

// FluxSyncStatus is the state of the cluster's sync.
type FluxSyncStatus struct {
	// ID is kustomization/<namespace>/<name>.
	ID string `json:"id"`
	// Path the sync applies.
	// +optional
	Path string `json:"path,omitempty"`
	// Ready tells whether the sync is Ready.
	Ready bool `json:"ready"`
	// Status is the sync's Ready message.
	Status string `json:"status"`
	// Source is the sync's source URL.
	// +optional
	Source string `json:"source,omitempty"`
}

// FluxReportStatus is the report's own state.
type FluxReportStatus struct {
	meta.ReconcileRequestStatus `json:",inline"`
	// Conditions of the report.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FluxReport reports what runs in the cluster; weir keeps one named flux
// next to the FluxInstance.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=fluxcd
// +kubebuilder:printcolumn:name="Entitlement",type="string",JSONPath=".spec.distribution.entitlement",description=""
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description=""
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description=""
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message",description=""
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'flux'",message="the only accepted name for a FluxReport is 'flux'"
type FluxReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FluxReportSpec   `json:"spec,omitempty"`
	Status FluxReportStatus `json:"status,omitempty"`
}

// FluxReportList is a list of FluxReports.
// +kubebuilder:object:root=true
type FluxReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FluxReport `json:"items"`
}

// GetConditions returns the status conditions.
func (in *FluxReport) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions sets the status conditions.
func (in *FluxReport) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

func init() {
	SchemeBuilder.Register(&FluxReport{}, &FluxReportList{})
}
