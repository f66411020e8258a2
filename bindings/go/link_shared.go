//go:build registrar_shared

package registrar

// Alternative linking (go build -tags registrar_shared): the shared library, found at run
// time through an rpath pointing at the repository's target/release. Move the binary
// elsewhere and it needs LD_LIBRARY_PATH, or the .so installed where the loader looks.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lregistrar -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
