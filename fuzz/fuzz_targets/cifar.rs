//! A CIFAR-10 binary batch.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = reslab::data::parse_cifar_batch(std::path::Path::new("fuzz.bin"), data);
});
