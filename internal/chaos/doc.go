// Package chaos holds weir's fault suite: tests that break what weir
// depends on while it works — weir itself killed with SIGKILL in the
// middle of a dependency chain and of a Helm install, the API server and
// etcd restarted alone, the Git server and the OCI registry down,
// answering 500 or hanging, the artifact folder emptied, two weir
// processes on one cluster — and check after each that nothing was pruned
// that should not have been and that every object converges once the
// fault ends.
//
// weir runs as a separate process (the test binary acting as `weir
// controller`), so that it can be killed as a crash would kill it. The
// control plane is the real local one (internal/localcluster), whose
// components can be stopped and started one at a time. Run the suite with
// `make chaos`; `make test` runs it too.
package chaos
