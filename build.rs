//! Compiles every `bpf/*.bpf.c` into a libbpf-rs skeleton in OUT_DIR (`NAME.skel.rs`).
//! `CLANG` overrides the clang binary (default: `clang` from PATH). libbpf-cargo supplies libbpf's
//! own headers; the kernel types come from the hand-written `bpf/vmlinux_min.h`.

use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let bpf = manifest.join("bpf");
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=CLANG");

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&bpf)
        .expect("read bpf/")
        .map(|e| e.expect("read bpf/ entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in sources {
        let file = src.file_name().and_then(OsStr::to_str).expect("utf-8 name");
        let name = file.trim_end_matches(".bpf.c");
        let mut builder = SkeletonBuilder::new();
        builder
            .source(&src)
            .clang_args([OsStr::new("-I"), bpf.as_os_str(), OsStr::new("-Wall")]);
        if let Some(clang) = env::var_os("CLANG") {
            builder.clang(clang);
        }
        if let Err(e) = builder.build_and_generate(out.join(format!("{name}.skel.rs"))) {
            panic!("building {}: {e:#}", src.display());
        }
    }
}
