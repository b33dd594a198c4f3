// Package logs reads weir's own log: the JSON lines its controllers write
// (controller-runtime's zap encoder, with Flux's fields: level, ts, msg,
// controllerKind, name, namespace, reconcileID, error), from wherever the
// controllers run. A [Source] gives the raw lines: [Pods] reads the pods of
// weir's Deployment in a cluster through the pods/log API, [File] reads
// the log file of a local run (`weir up` writes logs/weir.log in its state
// folder). [Read] parses each line into an [Entry], keeps those a [Filter]
// matches, and hands them on; [Entry.Format] prints one as `flux logs`
// does.
//
// A line that is not JSON (a panic's stack, a message printed before the
// logger was set up) is never a reason to stop: it is passed on as it is,
// since it is often the one line that explains the rest.
//
// `weir logs` and the MCP server's get_flux_logs tool both read through
// this package:
//
//	src, err := logs.SourceFor(stateDir, kubeconfig, newClientset)
//	...
//	q := logs.Query{Filter: logs.Filter{Kind: "Kustomization", Level: "error"}, Tail: 50}
//	err = logs.Read(ctx, src, q, func(e logs.Entry) error {
//		fmt.Println(e.Format())
//		return nil
//	})
package logs
