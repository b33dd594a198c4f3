// Package control acts on Flux objects the way a user does: it reads their
// status, asks for a reconcile, waits for it, suspends and resumes them. The
// command line, the MCP server and the dashboard all act through it, so that
// `weir reconcile`, an MCP tool call and a dashboard button do the same thing
// and say the same thing.
//
// Everything here is a plain client operation, the same ones the flux CLI
// performs: a merge patch of the `reconcile.fluxcd.io/requestedAt` annotation
// or of `spec.suspend`, then reads until the status catches up. Which kinds
// are known is one table ([Kinds]); the functions are generic over them,
// because every Flux kind shares one status shape (conditions,
// observedGeneration, lastHandledReconcileAt).
//
// A reconcile from start to end:
//
//	k, _ := control.LookupKind("source git")
//	obj, err := control.Get(ctx, c, k, key)
//	...
//	requestedAt, err := control.RequestReconcile(ctx, c, obj)
//	...
//	obj, err = control.WaitReconciled(ctx, c, key, k, requestedAt)
//	...
//	fmt.Println(k.Outcome(obj)) // fetched revision main@sha1:...
package control
