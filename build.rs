//! Generates include/registrar.h from src/ffi/ with cbindgen. The header is committed; CI
//! fails if a build changes it (the header and the code must never disagree).
//!
//! Cargo.toml is the only place the version is written: the header's version macros are
//! added here from it (the Python package, the Go module and the release archives read it
//! from Cargo.toml too; scripts/dist.sh checks they agree).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    config.after_includes = Some(version_macros(config.after_includes.take()));
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

/// The `#define`s of the package version (from Cargo.toml), after whatever cbindgen.toml adds.
fn version_macros(configured: Option<String>) -> String {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"));
    let mut text = configured.unwrap_or_default();
    text.push_str(&format!(
        "#define REGISTRAR_VERSION \"{}\"\n\
         #define REGISTRAR_VERSION_MAJOR {}\n\
         #define REGISTRAR_VERSION_MINOR {}\n\
         #define REGISTRAR_VERSION_PATCH {}\n",
        var("CARGO_PKG_VERSION"),
        var("CARGO_PKG_VERSION_MAJOR"),
        var("CARGO_PKG_VERSION_MINOR"),
        var("CARGO_PKG_VERSION_PATCH"),
    ));
    text
}
