// Package sandbox defines Warden's core vocabulary: sandbox IDs, the Spec a
// sandbox is created from, execution requests and results, the Provider
// contract every isolation backend implements, and the error classes callers
// match with errors.Is.
//
// It imports only the standard library, so every other package can depend on
// it. IDs accepted by [ValidateID] are safe to use as path components,
// container names and cgroup names.
package sandbox
