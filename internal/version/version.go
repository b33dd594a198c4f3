// Package version holds weir's version, set at link time with
// -ldflags "-X github.com/weirhq/weir/internal/version.Version=v0.1.0".
package version

import "runtime/debug"

// Version is weir's release version; "dev" for builds from a work tree.
var Version = "dev"

// Commit returns the VCS revision the binary was built from, when the Go
// toolchain recorded one.
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
