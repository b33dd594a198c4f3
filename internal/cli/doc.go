// Package cli is weir's command line: one file per verb. Each verb parses
// its flags and calls the package that does the work, so that the
// controllers, the MCP server and the dashboard share the same code.
package cli
