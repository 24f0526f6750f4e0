// Package api holds the wire types of Warden's HTTP API (docs/api.md): the
// JSON bodies that `warden serve` reads and writes and that the Go client
// in package [github.com/warden-sandbox/warden/client] sends and decodes.
// The server and the client share these definitions; neither keeps copies.
//
// The package is plain data: standard library only, no behaviour beyond
// encoding and a few helpers. Field names and JSON tags are the API's; a
// field added here is a field added to the API.
//
// Compatibility: fields are only added, never renamed or removed, within
// a major version. Fields marked as aliases (sandbox_id, success,
// execution_time) repeat other fields in the names that clients of the
// Agent Platform, one of the systems Warden replaces, read.
package api
