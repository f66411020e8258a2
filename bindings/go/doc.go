// Package registrar registers a Go service with a Netflix Eureka registry through the
// registrar C library (a Rust core): it registers, keeps the lease alive with heartbeats,
// re-registers when the registry forgets the instance (server restart, eviction), carries
// status and metadata changes, and deregisters on Close.
//
//	cfg := registrar.ConfigFromEnv() // REGISTRY_URL, REGISTRY_APP_NAME, ...
//	cfg.Port = 8080
//	client, err := registrar.Start(cfg)
//	if err != nil {
//		log.Fatal(err) // e.g. ErrInvalidConfig, naming the setting
//	}
//	defer client.Close() // deregister (DELETE)
//	client.Up()
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	if err := client.WaitRegistered(ctx); err != nil {
//		log.Print(err) // still retrying in the background; err says why
//	}
//
// Linking: by default the package links target/release/libregistrar.a statically (build it
// with `cargo build --release` at the repository root), so binaries run without the shared
// library. Build with -tags registrar_shared to link libregistrar.so with an rpath instead.
//
// Concurrency: a Client may be used by any number of goroutines at once. Every failing C
// call's thread-local error message is read inside that same C call (a helper in the cgo
// preamble), since Go may move a goroutine to another OS thread between two cgo calls.
// No C code calls back into Go: the heartbeat path never enters the Go runtime.
package registrar
