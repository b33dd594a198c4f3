// Package diagnose says why a Flux object is not Ready: it classifies each
// object from its conditions, follows a Kustomization or HelmRelease
// through its not-Ready dependencies and sources (sourceRef, chartRef, the
// HelmChart of a chart and that chart's repository) to the object that
// holds it, and says what to do about it, in the terms of the seed's
// troubleshooting table (deploy key, YAML, values, sops-age).
//
// `weir why`, the dashboard's "what holds it" text and the MCP tool
// explain_not_ready all read it from here.
package diagnose
