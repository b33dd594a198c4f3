// Package gitrepository reconciles Flux's GitRepository objects
// (source.toolkit.fluxcd.io/v1): it resolves the spec's ref against the
// remote, fetches the commit with go-git only when the remote moved, and
// stores the tree, minus ignored files and with included sources copied in,
// as an artifact whose URL goes into status.artifact.
//
// Before a commit is stored, spec.verify's OpenPGP signatures are checked
// (package gitsig); a commit that fails is never stored. spec.sparseCheckout
// narrows the checkout to some folders, spec.recurseSubmodules adds the
// submodules, and provider github authenticates as a GitHub App (package
// githubapp).
//
// Status, conditions, reasons, events and metrics follow source-controller,
// so that Flux's own tooling reads weir's objects as it reads Flux's.
package gitrepository
