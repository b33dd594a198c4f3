// Package redact keeps secret values out of the messages a reconciler
// writes: status conditions, events, and the error it returns (which
// controller-runtime logs as "Reconciler error").
//
// A reconcile collects the values it takes from Secrets in a Secrets set:
// HelmRelease valuesFrom Secret values (and every value nested in the YAML
// document a key holds), Kustomization substituteFrom Secret values, the
// values of SOPS-decrypted documents. The API server quotes what it
// rejects (`Invalid value: "..."`, `ports[containerPort="..."]`), and so do
// Helm and kustomize; before a message leaves the reconciler, Mask
// replaces every collected value in it with [redacted].
//
// A Registry holds one Secrets set per object for the time of its
// reconcile, so that an event recorder wrapped with Registry.Recorder
// masks the events emitted during that reconcile:
//
//	secrets := r.secrets.Start(key)
//	defer r.secrets.Done(key)
//	values, err := composeValues(ctx, hr, secrets)
//	...
//	secrets.MaskConditions(hr.Status.Conditions)
//	return result, secrets.Error(err)
//
// Values shorter than MinLength characters, and the words true, false and
// null, are not masked: masking them would garble every message (a "1"
// would be replaced inside every number) and hide next to nothing.
package redact
