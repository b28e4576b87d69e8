//! libFuzzer target: see `vgrad_fuzz::tb_events`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vgrad_fuzz::tb_events(data));
