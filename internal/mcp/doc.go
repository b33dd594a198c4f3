// Package mcp is weir's Model Context Protocol server: it lets an AI
// assistant read the state of a cluster's Flux objects, their events,
// weir's logs and the dependency graph, render and diff Kustomizations, and
// (unless read-only) reconcile, suspend and resume objects. It is built on
// the official Go SDK (github.com/modelcontextprotocol/go-sdk) and acts
// through the same packages as the command line (internal/control,
// internal/events, internal/logs, internal/render), so that a tool call
// and a `weir` command do the same thing and say the same thing.
//
// Every tool is one registration function in the [tools] table; adding a
// tool is a file with its input type, its description (which tells a
// model when to use it) and its handler, and one line in the table:
//
//	func getThing(s *Server) {
//		addTool(s, tool{Name: "get_thing", Description: "..."},
//			func(ctx context.Context, in thingInput) (any, error) { ... })
//	}
//
// What the server guarantees whatever the tool: a tool that writes is
// left out when the server is read-only; an error or a panic in a handler
// is a tool error (IsError), never a protocol error or a crash; no Secret
// value is returned (rendered Secrets are masked, and every value a render
// read from a Secret is masked wherever it appears); every call is logged
// with its tool, its arguments, its duration and its outcome.
//
// The server is served over stdio ([Server.ServeStdio], what assistants
// start as a child process) or streamable HTTP ([Server.ServeHTTP]), where
// a bearer token is required off loopback.
package mcp
