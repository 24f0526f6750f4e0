// Package envdpb holds Warden's own protobuf definitions of E2B's envd
// services, process.Process and filesystem.Filesystem, and the Go code
// generated from them: messages in processpb and filesystempb, Connect
// handlers and clients in their *connect subpackages. See README.md.
package envdpb

// The generators are pinned; protoc is Debian's protobuf-compiler 3.21.12.
// The plugins are installed into $(go env GOPATH)/bin, which must be on PATH.
//go:generate go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//go:generate go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
//go:generate protoc -I . --go_out=../../.. --go_opt=module=github.com/warden-sandbox/warden --connect-go_out=../../.. --connect-go_opt=module=github.com/warden-sandbox/warden process.proto filesystem.proto
