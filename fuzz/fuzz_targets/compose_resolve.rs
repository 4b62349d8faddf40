//! Fuzzes berth-compose's parser, interpolation and resolution: any bytes
//! as a Compose file (with an include and an extends target beside it)
//! must give a resolved project or an error, never a panic; the resolved
//! model must validate and render without panicking.
#![no_main]

use berth_compose::{config, interpolate, load, validate, MemFiles, Options};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = BTreeMap::from([("A".to_string(), "1".to_string())]);
    let _ = interpolate::interpolate(text, &vars);
    let _ = interpolate::undefaulted_vars(text);
    let mut files = MemFiles::new();
    files.insert("/p/compose.yaml", text);
    files.insert("/p/other.yaml", text);
    files.insert("/p/.env", "A=1\nB=${A}\n");
    let opts = Options {
        project_dir: Some("/p".into()),
        profiles: vec!["*".into()],
        ..Options::default()
    };
    if let Ok(project) = load(&files, &opts) {
        let _ = validate::validate(&project, validate::Runtime::Docker, None);
        let _ = validate::validate(&project, validate::Runtime::Native, None);
        if let Ok(tree) = config::canonical(&project, &files) {
            let _ = config::to_yaml(&tree);
            let _ = config::to_json(&tree);
        }
    }
});
