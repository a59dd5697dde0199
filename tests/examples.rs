//! The example configurations under `examples/configs/` (Spring STOMP, RabbitMQ Web-STOMP,
//! socket.io, a JWT chat with per-user caps) pass `wsgate check`, with the secrets they name set
//! in the environment, and each opens with a comment header saying what it is for.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Secrets the examples read from the environment (`secret_env`, `token_env`).
const SECRETS: &[(&str, &str)] = &[
    ("WSGATE_CHAT_SECRET", "an-example-hs256-secret-of-32-bytes!"),
    ("WSGATE_ADMIN_TOKEN", "an-example-admin-token"),
];

/// The stacks the examples cover, by file name.
const EXPECTED: &[&str] = &[
    "jwt-chat.yaml",
    "rabbitmq-web-stomp.yaml",
    "socketio.yaml",
    "spring-stomp.yaml",
];

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_config_passes_wsgate_check() {
    let files = example_configs();
    let names: Vec<String> = (files.iter())
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, EXPECTED);
    for file in &files {
        let mut check = Command::new(env!("CARGO_BIN_EXE_wsgate"));
        check.args(["check", "--config"]).arg(file);
        for (name, value) in SECRETS {
            check.env(name, value);
        }
        let out = check.output().expect("run wsgate check");
        assert!(
            out.status.success() && out.stdout == b"ok\n",
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_example_config_opens_with_a_comment_header() {
    for file in example_configs() {
        let text = std::fs::read_to_string(&file).expect("read example");
        let header = text.lines().take_while(|l| l.starts_with('#')).count();
        assert!(
            header >= 5,
            "{}: a comment header says what it is for",
            file.display()
        );
    }
}

#[test]
fn the_jwt_chat_needs_its_secret() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs/jwt-chat.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["check", "--config"])
        .arg(&file)
        .env_remove("WSGATE_CHAT_SECRET")
        .env("WSGATE_ADMIN_TOKEN", "t")
        .output()
        .expect("run wsgate check");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WSGATE_CHAT_SECRET"),
        "{out:?}"
    );
}
