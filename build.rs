//! Generates include/registrar.h from src/ffi/ with cbindgen. The header is committed; CI
//! fails if a build changes it (the header and the code must never disagree).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    assert!(
        config
            .after_includes
            .as_deref()
            .unwrap_or("")
            .contains(&format!("\"{version}\"")),
        "cbindgen.toml's REGISTRAR_VERSION must match Cargo.toml's version {version}"
    );
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        // write_to_file rewrites only when the content changed, so builds stay incremental.
        Ok(bindings) => {
            bindings.write_to_file(crate_dir.join("include/registrar.h"));
        }
        Err(e) => panic!("cbindgen could not generate include/registrar.h: {e}"),
    }
}
