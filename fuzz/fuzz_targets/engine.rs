//! Fuzz target 1: the whole per-file pipeline (gate, parse, plan, edit, verify) on arbitrary
//! bytes. It must never panic or hang; an edited output differs from the input, loads with
//! yaml_serde whenever the input did (no damage), and fixing it again changes nothing or refuses.
#![no_main]

use std::path::Path;

use kube_harden::report::{Settings, Status};
use kube_harden::sources::manifest::process_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let settings = Settings::default();
    let report = process_text(Path::new("fuzz.yaml"), text.to_string(), &settings);
    if let Status::Changed { new_text } = report.status {
        assert_ne!(new_text, text);
        if kube_harden::verify::load_all(text).is_ok() {
            assert!(kube_harden::verify::load_all(&new_text).is_ok(), "verified output must load");
        }
        let again = process_text(Path::new("fuzz.yaml"), new_text, &settings);
        assert!(!matches!(again.status, Status::Changed { .. }), "a second fix changed the file again");
    }
});
