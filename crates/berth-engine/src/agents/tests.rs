use super::*;
use serde_json::json;

#[test]
fn agent_types_defaults_overrides_and_unknown() {
    let t = AgentTypes::from_env([
        (
            "BERTH_ACP_AGENT_CLAUDE_CODE".to_string(),
            "/opt/cc --acp 'a b'".to_string(),
        ),
        (
            "BERTH_ACP_AGENT_MY_AGENT".to_string(),
            "my-agent".to_string(),
        ),
        ("PATH".to_string(), "/bin".to_string()),
    ])
    .unwrap();
    assert_eq!(
        t.command("claude-code").unwrap(),
        vec!["/opt/cc", "--acp", "a b"]
    );
    assert_eq!(t.command("my-agent").unwrap(), vec!["my-agent"]);
    assert_eq!(t.command("opencode").unwrap(), vec!["opencode", "acp"]);
    let e = t.command("nope").unwrap_err().to_string();
    assert!(
        e.contains("nope") && e.contains("amp") && e.contains("gemini"),
        "{e}"
    );
    let bad = AgentTypes::from_env([("BERTH_ACP_AGENT_X".to_string(), "'open".to_string())]);
    assert!(bad.unwrap_err().to_string().contains("BERTH_ACP_AGENT_X"));
}

#[test]
fn transient_errors_and_backoff() {
    assert!(retry::is_transient("rate limit exceeded (429)", None));
    assert!(retry::is_transient("Overloaded", None));
    assert!(retry::is_transient(
        "upstream",
        Some(&json!({"statusCode": 503}))
    ));
    assert!(!retry::is_transient("invalid prompt", None));
    assert!(!retry::is_transient(
        "internal error",
        Some(&json!({"status": 400}))
    ));
    let s = Duration::from_secs;
    assert_eq!(retry::backoff(0, s(15), s(120)), s(15));
    assert_eq!(retry::backoff(1, s(15), s(120)), s(30));
    assert_eq!(retry::backoff(3, s(15), s(120)), s(120));
    assert_eq!(retry::backoff(40, s(15), s(120)), s(120));
}

#[test]
fn fs_paths_stay_inside_the_root() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    std::fs::write(root.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root.join("link")).unwrap();
    let p = |n: &str| root.join(n).display().to_string();
    let f = fs::resolve_read(&root, &p("a.txt")).unwrap();
    assert_eq!(fs::read(&f, Some(2), Some(1)).unwrap(), "two\n");
    assert!(fs::resolve_read(&root, &p("link"))
        .unwrap_err()
        .contains("outside"));
    assert!(fs::resolve_write(&root, &p("link"))
        .unwrap_err()
        .contains("outside"));
    assert!(fs::resolve_read(&root, &format!("{}/../x", root.display()))
        .unwrap_err()
        .contains(".."));
    assert!(fs::resolve_read(&root, "a.txt")
        .unwrap_err()
        .contains("absolute"));
    let w = fs::resolve_write(&root, &p("new.txt")).unwrap();
    fs::write(&w, "hi").unwrap();
    assert_eq!(std::fs::read_to_string(root.join("new.txt")).unwrap(), "hi");
}

#[test]
fn the_hub_orders_replays_and_drops_a_viewer_that_does_not_read() {
    let h = hub::Hub::new(3, 2);
    h.publish(Event::Prompting);
    let mut slow = h.attach();
    assert_eq!(slow.replay.len(), 1);
    for i in 0..4 {
        h.publish(Event::Acp(format!("{i}").into()));
    }
    let late = h.attach();
    assert_eq!(
        late.replay.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    // The slow viewer held 2 and was dropped at the third.
    assert_eq!(h.viewers(), vec![late.id]);
    assert_eq!(h.dropped(), 1);
    let mut got = Vec::new();
    while let Ok(Out::Event(seq, _)) = slow.rx.try_recv() {
        got.push(seq);
    }
    assert_eq!(got, vec![2, 3]);
}

#[test]
fn agent_types_file_over_built_ins_under_env_and_errors_with_lines() {
    let p = std::path::Path::new("/state/agents.toml");
    let t = AgentTypes::built_in()
        .with_file(
            p,
            "[types.mine]\ncommand = [\"/opt/mine\", \"--acp\"]\n[types.gemini]\ncommand = \"g 'a b'\"\n[types.opencode]\ncommand = \"from-file\"\n",
        )
        .unwrap()
        .with_env([(
            "BERTH_ACP_AGENT_OPENCODE".to_string(),
            "from-env".to_string(),
        )])
        .unwrap();
    assert_eq!(t.command("mine").unwrap(), vec!["/opt/mine", "--acp"]);
    assert_eq!(t.command("gemini").unwrap(), vec!["g", "a b"]);
    assert_eq!(t.command("opencode").unwrap(), vec!["from-env"]);
    assert_eq!(t.command("amp").unwrap(), vec!["npx", "-y", "amp-acp"]);
    let e = AgentTypes::built_in()
        .with_file(p, "[types.a]\ncommand = [\"x\"]\n[types.b\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/state/agents.toml: line 3:"), "{e}");
    let e = AgentTypes::built_in()
        .with_file(p, "\n[types.a]\ncomand = [\"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/state/agents.toml: line 2: types.a: ") && e.contains("comand"),
        "{e}"
    );
    let e = AgentTypes::built_in()
        .with_file(p, "[types.a]\ncommand = \"'open\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1: types.a.command: expected a list of strings or a command line string"),
        "{e}"
    );
    let e = AgentTypes::built_in()
        .with_file(p, "[types.n]\ncommand = 5\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1: types.n.command: expected a list of strings or a command line string")
            && !e.contains("variant"),
        "{e}"
    );
    let e = AgentTypes::built_in()
        .with_file(p, "[types.n]\ncommand = [\"x\", 5]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("types.n.command: expected a list of strings"),
        "{e}"
    );
}

#[test]
fn container_paths_are_judged_by_their_words() {
    use std::path::Path;
    let root = Path::new("/workspaces/app");
    assert!(fs::lexically_under(Path::new("/workspaces/app"), root));
    assert!(fs::lexically_under(Path::new("/workspaces/app/src"), root));
    assert!(!fs::lexically_under(
        Path::new("/workspaces/app/../etc"),
        root
    ));
    assert!(!fs::lexically_under(Path::new("/workspaces/apple"), root));
    assert!(!fs::lexically_under(Path::new("src"), root));
}

#[test]
fn transcript_entries_are_cut_on_a_character_and_the_oldest_dropped() {
    use super::transcript::*;
    let e = entry("user", &"é".repeat(ENTRY_MAX));
    let t = e["text"].as_str().unwrap();
    assert!(t.len() <= ENTRY_MAX && t.ends_with(CUT_MARK), "{}", t.len());
    assert_eq!(e["truncated"], true);
    assert_eq!(
        entry("agent", "short"),
        serde_json::json!({"role": "agent", "text": "short"})
    );
    let mut all = Vec::new();
    for i in 0..40 {
        push(
            &mut all,
            "user",
            &format!("{i:05}{}", "x".repeat(ENTRY_MAX)),
        );
    }
    let total: usize = all.iter().map(|e| e["text"].as_str().unwrap().len()).sum();
    assert!(total <= TOTAL_MAX, "{total}");
    assert!(all.last().unwrap()["text"]
        .as_str()
        .unwrap()
        .starts_with("00039"));
    let n = newest(&all, NOTICE_MAX);
    assert!(n.len() < all.len() && n.last() == all.last());
}
