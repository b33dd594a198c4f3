//go:build tools

// Package tools pins kwok in this module's build list so that its command,
// sigs.k8s.io/kwok/cmd/kwok, can be built from here.
package tools

import _ "sigs.k8s.io/kwok/pkg/kwok/cmd"
