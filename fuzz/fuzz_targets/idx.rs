//! libFuzzer target: see `vgrad_fuzz::idx`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgrad_fuzz::idx(data));
