//go:build !linux

package main

// pin does nothing where there are no idmapped mounts.
func pin(d hostDir) (_ hostDir, unpin func()) { return d, func() {} }
