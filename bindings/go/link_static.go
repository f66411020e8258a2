//go:build !registrar_shared

package registrar

// Default linking: the static library, so a binary built with `go build` runs on its own,
// without libregistrar.so beside it. Build the library first with `cargo build --release`
// at the repository root. The extra libraries are the ones rustc reports for the staticlib
// (`--print native-static-libs`).

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libregistrar.a -ldl -lm -lpthread -lrt -lutil -lgcc_s -lc
*/
import "C"
