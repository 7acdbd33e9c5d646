#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rfdfs_tests::fuzz::packets(data));
