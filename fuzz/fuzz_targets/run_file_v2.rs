//! A version-2 run file: the input is the JSON's length (4 bytes, little-endian), the JSON, and
//! the history side file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (json, side) = rest.split_at(n.min(rest.len()));
    let _ = reslab::runfile::parse_split(json, side);
});
