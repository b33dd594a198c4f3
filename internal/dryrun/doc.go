// Package dryrun asks an API server whether it would take rendered
// objects, without changing anything: each object is applied server-side
// with dry run, as weir's apply would apply it (its field manager, forced
// ownership, CRDs and Namespaces first), so that the server's schema
// validation, defaulting and admission judge it.
//
// An object the server cannot judge yet is skipped, not refused: one of a
// kind whose CustomResourceDefinition is only in the repository, or in a
// Namespace only the repository creates. On a throwaway cluster, Establish
// applies those CRDs and Namespaces for real first, so that nothing is
// skipped:
//
//	d := &dryrun.Checker{Client: c, Defined: dryrun.DefinedBy(everything)}
//	results, err := d.DryRun(ctx, objects)
//
// `weir test --server` and `weir test --local` check a repository with it.
package dryrun
