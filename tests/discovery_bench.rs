//! The discovery benchmark, kept as an ignored test so it builds with the library's release
//! profile (LTO) without a second dependency build. Run it by hand:
//!
//!     bench/discovery/run.sh
//!     cargo test --release --test discovery_bench -- --ignored --nocapture
//!
//! Code, method and figures: bench/discovery/.

#[path = "../bench/discovery/bench.rs"]
mod bench;

#[global_allocator]
static ALLOCATOR: bench::Counting = bench::Counting;

#[test]
#[ignore = "a benchmark: run by hand (bench/discovery/run.sh)"]
fn discovery_benchmark() {
    bench::run();
}
