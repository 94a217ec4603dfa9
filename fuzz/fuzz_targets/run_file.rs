//! A run file in one JSON (version 1, or a run embedded in an experiment file).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = reslab::runfile::parse(data);
});
