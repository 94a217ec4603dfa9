//! A network spec (JSON), validated, diagnosed and estimated.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<reslab::spec::NetSpec>(data) else {
        return;
    };
    let _ = reslab::spec::diagnose(&spec);
    if let Ok(v) = reslab::spec::validate(&spec) {
        let _ = reslab::spec::expected_tensors(&v);
        let _ = reslab::spec::estimate_memory(&v, &Default::default());
    }
});
