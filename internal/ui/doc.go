// Package ui is weir's web dashboard: the dependency graph of Kustomizations
// and HelmReleases laid out left to right with live status colours, a detail
// pane per object (conditions, source and revision, inventory, recent events
// and, when it is not Ready, why in plain words), the list of sources, and
// reconcile, suspend and resume buttons.
//
// The server reads the cluster through its own informer cache: it never
// polls. Each change to a watched object rebuilds a [Snapshot] (debounced,
// so that a burst of changes costs one rebuild) and pushes it to every open
// page over server-sent events: the full snapshot when a page connects,
// then only the objects that changed while the graph keeps its shape.
// Events are read from the API server when a detail pane opens or its
// object changes.
//
// The page, its script and its style are embedded in the binary: nothing is
// loaded from elsewhere, so the dashboard works offline.
//
// Security: a server bound to a loopback address answers without a token
// but only to requests that name it by a loopback host (which keeps
// DNS-rebinding pages out). Bound elsewhere, [New] refuses to start without
// [Options.Token], every request must carry it, and every action is made
// as [Options.ImpersonateUser] so that the API server's RBAC decides. Every
// action also needs the page's CSRF token and a same-origin request.
//
// `weir controller --ui-addr` and `weir up` serve it:
//
//	srv, err := ui.New(cfg, ui.Options{Addr: "127.0.0.1:9292", Logger: log})
//	if err != nil {
//		return err
//	}
//	fmt.Println("dashboard:", srv.URL())
//	return srv.Run(ctx) // until ctx ends
package ui
