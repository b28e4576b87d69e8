//! libFuzzer target: see `vgrad_fuzz::sweep_file`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgrad_fuzz::sweep_file(data));
