// A consumer of the published Go module, built the way a user builds it: a module of its own,
// outside the repository, with plain `go build` and no Rust toolchain (scripts/test-dist.sh
// points its go.mod at dist/go with a replace directive, as `go get` would fetch it).
// Registers from the REGISTRY_* environment, waits until the registry holds it, deregisters,
// and prints "go_consumer: ok <version> <instance id>".
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	registrar "github.com/registrar/registrar-go"
)

func main() {
	if registrar.Version() != registrar.ModuleVersion {
		fail(fmt.Errorf("module %s links library %s", registrar.ModuleVersion, registrar.Version()))
	}
	client, err := registrar.Start(registrar.ConfigFromEnv())
	if err != nil {
		fail(err)
	}
	if err := client.Up(); err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.WaitRegistered(ctx); err != nil {
		fail(err)
	}
	if err := client.Close(); err != nil {
		fail(err)
	}
	fmt.Printf("go_consumer: ok %s %s\n", registrar.Version(), client.InstanceID())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_consumer:", err)
	os.Exit(1)
}
