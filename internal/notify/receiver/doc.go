// Package receiver serves Flux's Receiver (notification.toolkit.fluxcd.io/v1):
// the controller reads each Receiver's token and writes the path it answers
// on (/hook/ and a digest of the token, name and namespace, as Flux
// computes it), and the server verifies each webhook as its sender signs
// it (GitHub's and Bitbucket's HMAC-SHA256, GitLab's and Harbor's token,
// generic HMAC, and the registry payloads), then sets
// reconcile.fluxcd.io/requestedAt on the resources the Receiver lists.
package receiver
