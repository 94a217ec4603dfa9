//! A weights file (safetensors).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = reslab::runfile::decode_weights(data) {
        let _ = reslab::runfile::encode_weights(&ck);
    }
});
