module github.com/registrar/registrar/examples/go

go 1.24

require github.com/registrar/registrar/bindings/go v0.0.0

// The bindings live in this repository; they link ../../target/release/libregistrar.a.
replace github.com/registrar/registrar/bindings/go => ../../bindings/go
