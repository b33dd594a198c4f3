// Package badinput holds no code, only weir's bad-input suite for the
// objects a user writes: Kustomizations, GitRepositories, OCIRepositories
// and HelmReleases with broken specs, or pointing at broken repositories,
// created all at once against one real local control plane with weir's
// controllers, a Git server and an OCI registry (internal/testenv).
//
// Each case says what the user must be told: creation refused by the CRD
// with the field named, or Ready=False (and Stalled=True where retrying
// cannot help) with a message that names the file, the field or the
// object at fault. Across all cases the suite then checks that nothing
// was applied from a failed reconcile or pruned by one, and that no
// secret value (of a SOPS-encrypted Secret, a substituteFrom Secret, a
// valuesFrom Secret, a password in a URL) appears in any status or event.
//
// The pure parts of the suite live next to the code they test:
// internal/render (TestBadSources: broken repositories rendered without a
// cluster) and internal/artifact (TestBadArchives: crafted tarballs), with
// the fuzz tests FuzzSubstitute, FuzzExtractEntries, FuzzExtractStream and,
// in config/crd, FuzzDuration. docs/operations.md says how to run them.
package badinput
