package registrar_test

import (
	"context"
	"errors"
	"log"
	"time"

	registrar "github.com/registrar/registrar/bindings/go"
)

// Register from the REGISTRY_* environment, overriding the port in code, and deregister on
// return.
func Example() {
	cfg := registrar.ConfigFromEnv()
	cfg.Port = 8080
	client, err := registrar.Start(cfg)
	if err != nil {
		log.Fatal(err) // e.g. ErrInvalidConfig: "REGISTRY_APP_NAME is not set..."
	}
	defer client.Close() // deregister (DELETE)

	if err := client.Up(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch err := client.WaitRegistered(ctx); {
	case err == nil:
		log.Printf("registered %s/%s", client.AppName(), client.InstanceID())
	case errors.Is(err, registrar.ErrUnauthorized):
		log.Fatal("the registry refused our credentials: ", err)
	default:
		log.Print("not registered yet, retrying in the background: ", err)
	}
}
