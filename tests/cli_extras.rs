//! `wsgate man` and `wsgate completions SHELL` as the package build runs them: the man page is
//! roff naming every command, each completion script knows the subcommands, and a bad argument
//! is a usage error (exit 64) that says what is allowed. Also the config the Debian package
//! installs as /etc/wsgate/wsgate.yaml: it checks, and it takes the packaged socket unit's socket.

use std::process::{Command, Output};

fn wsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(args)
        .output()
        .expect("run wsgate")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

#[test]
fn man_prints_a_roff_page_naming_every_command() {
    let page = stdout(&wsgate(&["man"]));
    assert!(page.contains("\n.TH wsgate 1 "), "{page}");
    assert_eq!(
        page.matches(".ds Aq").count(),
        2,
        "one roff preamble: {page}"
    );
    for heading in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(heading), "missing {heading}");
    }
    for command in [
        "wsgate run",
        "wsgate check",
        "wsgate sessions list",
        "wsgate sessions close",
        "wsgate version",
        "wsgate man",
        "wsgate completions",
    ] {
        assert!(
            page.contains(&format!(".SS \"{command}\"")),
            "no subsection for {command}"
        );
    }
    // Flags of the subcommands are on the page too, not only in pages it would point at.
    assert!(page.contains("\\-\\-config"), "{page}");
    assert!(page.contains("\\-\\-fleet"), "{page}");
    assert!(
        !page.contains("wsgate\\-run(1)"),
        "points at a page that is not shipped"
    );
}

#[test]
fn completions_for_each_shell_know_the_subcommands() {
    for (shell, marker) in [
        ("bash", "complete -F _wsgate"),
        ("zsh", "#compdef wsgate"),
        ("fish", "complete -c wsgate"),
    ] {
        let script = stdout(&wsgate(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for word in ["sessions", "check", "completions", "config", "fleet"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
}

#[test]
fn unknown_shell_is_a_usage_error_listing_the_shells() {
    let out = wsgate(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
    assert!(err.contains("bash, zsh, fish"), "{err}");
}

#[test]
fn other_usage_errors_exit_64_and_help_exits_0() {
    let out = wsgate(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let out = wsgate(&["completions"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let help = stdout(&wsgate(&["--help"]));
    assert!(help.contains("completions"), "{help}");
}

#[test]
fn packaged_config_checks_and_takes_the_socket_units_socket() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = format!("{root}/packaging/deb/wsgate.yaml");
    assert_eq!(stdout(&wsgate(&["check", "--config", &config])), "ok\n");

    let yaml = std::fs::read_to_string(&config).expect("read packaged config");
    let socket = std::fs::read_to_string(format!("{root}/systemd/wsgate.socket")).expect("socket");
    assert!(socket.contains("\nFileDescriptorName=public\n"), "{socket}");
    assert!(yaml.contains("bind: \"systemd:public\""), "{yaml}");
    // The placeholder backend is the loopback discard port: an unedited install exposes nothing.
    assert!(yaml.contains("- url: \"ws://127.0.0.1:9\""), "{yaml}");
}
