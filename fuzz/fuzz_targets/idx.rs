//! An IDX file, plain or gzipped.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = reslab::data::parse_idx_maybe_gz(std::path::Path::new("fuzz.idx"), data);
});
