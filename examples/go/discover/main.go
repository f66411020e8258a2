// Command discover prints the UP instances of an application registered with Eureka, one
// per line, sorted by instance id:
//
//	INSTANCE_ID host:port STATUS
//
// Configured by the REGISTRY_* environment (REGISTRY_URL, REGISTRY_USER/REGISTRY_PASSWORD,
// REGISTRY_TIMEOUT; REGISTRY_APP_NAME is not needed):
//
//	REGISTRY_URL=http://127.0.0.1:8761/eureka/ ./discover MY_AWSOME_GO_MS
//
// Exit status: 0 on success (also when the application has no UP instance: nothing is
// printed), 2 on bad usage or configuration, 1 when the registry could not be fetched within
// -wait (the reason goes to stderr).
//
// Build: cargo build --release (repository root), then go build ./discover (examples/go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	registrar "github.com/registrar/registrar/bindings/go"
)

func main() { os.Exit(run()) }

func run() int {
	flags := flag.NewFlagSet("discover", flag.ContinueOnError)
	wait := flags.Duration("wait", 10*time.Second, "how long to wait for the first fetch of the registry")
	flags.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: discover [-wait DURATION] APP_NAME")
		flags.PrintDefaults()
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if flags.NArg() != 1 || flags.Arg(0) == "" {
		flags.Usage()
		return 2
	}
	app := flags.Arg(0)

	d, err := registrar.StartDiscovery(registrar.ConfigFromEnv())
	if err != nil {
		if errors.Is(err, registrar.ErrInvalidConfig) {
			fmt.Fprintf(os.Stderr, "discover: bad configuration: %s\n", message(err))
			return 2
		}
		fmt.Fprintf(os.Stderr, "discover: cannot start: %s\n", message(err))
		return 1
	}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "discover: cannot fetch the registry: %s\n", message(err))
		return 1
	}
	instances, err := d.Instances(app, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "discover: %s\n", message(err))
		return 1
	}
	for _, inst := range instances {
		host := inst.HostName
		if host == "" {
			host = inst.IPAddr
		}
		fmt.Printf("%s %s %s\n", inst.ID, net.JoinHostPort(host, strconv.Itoa(inst.Port)), inst.Status)
	}
	if err := d.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "discover: close: %s\n", message(err))
	}
	return 0
}

// message is the library's message without the "registrar: " prefix of Error().
func message(err error) string {
	var e *registrar.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}
