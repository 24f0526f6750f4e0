//go:build ignore

// pause is the pod sandbox image's only program: it waits for SIGTERM or
// SIGINT. up.sh builds it statically and imports it as an image, so the
// cluster needs no registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
