// Links the system OpenBLAS (Debian: libopenblas-dev) for the CBLAS column.
fn main() {
    println!("cargo:rustc-link-lib=openblas");
}
