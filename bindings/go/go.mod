module github.com/registrar/registrar/bindings/go

go 1.24
