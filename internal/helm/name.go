package helm

import (
	"crypto/sha256"
	"encoding/hex"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
)

// maxReleaseName is the longest release name Helm accepts.
const maxReleaseName = 53

// ReleaseName is the name of hr's Helm release as helm-controller names
// it: spec.releaseName, else [targetNamespace-]name; a name longer than
// Helm's 53 characters is cut to 40, then a hyphen and the first 12 hex
// digits of the full name's SHA-256 are appended, so that a long
// targetNamespace-name pair still installs and keeps its release across
// versions of either controller.
func ReleaseName(hr *helmv2.HelmRelease) string {
	name := hr.GetReleaseName()
	if len(name) <= maxReleaseName {
		return name
	}
	const hashLen = 12
	sum := sha256.Sum256([]byte(name))
	return name[:maxReleaseName-hashLen-1] + "-" + hex.EncodeToString(sum[:])[:hashLen]
}
