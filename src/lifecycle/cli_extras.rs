//! `wsgate man` and `wsgate completions SHELL`, and the exit status of a command-line usage error.
//!
//! Both commands are rendered from the clap definitions the binary parses with, so the man page
//! and the completion scripts cannot drift from the real flags. The Debian package runs them at
//! build time (`scripts/build-deb.sh`); nothing generated is committed. This module does not own
//! the definitions themselves (`main.rs` and `crate::admin::cli`), only what is printed from them.
//!
//! The man page is one page, `wsgate(1)`: clap_mangen's own layout points at one page per
//! subcommand (`wsgate-run(1)`, ...), which a single packaged page would leave dangling, so the
//! subcommands are rendered here as subsections of a COMMANDS section instead.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Parser, ValueEnum};
use clap_mangen::Man;

/// Exit status of a command-line usage error: an unknown subcommand, flag or value
/// (EX_USAGE in sysexits.h, the same status as a configuration error). clap's own is 2.
pub const EXIT_USAGE: u8 = 64;

/// Parse the process arguments. `--help` and `--version` print and give `Err(SUCCESS)`; a usage
/// error prints clap's message and gives `Err(EXIT_USAGE)`.
pub fn parse<P: Parser>() -> Result<P, ExitCode> {
    P::try_parse().map_err(|e| {
        // Printing fails only when stdout/stderr is gone; the status still says what happened.
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// `wsgate completions ...`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `wsgate completions` writes scripts for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// For /usr/share/bash-completion/completions/wsgate.
    Bash,
    /// For /usr/share/zsh/vendor-completions/_wsgate.
    Zsh,
    /// For /usr/share/fish/vendor_completions.d/wsgate.fish.
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(shell: Shell) -> Self {
        match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Print the completion script for `args.shell` to stdout.
pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> ExitCode {
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(args.shell),
        &mut cmd,
        name,
        &mut out,
    );
    write_stdout(&out)
}

/// Print the man page (roff) to stdout.
pub fn man(cmd: clap::Command) -> ExitCode {
    let mut page = Vec::new();
    match render_man(cmd, &mut page) {
        Ok(()) => write_stdout(&once_each_preamble_line(&page)),
        Err(e) => {
            eprintln!("wsgate: cannot render the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsgate: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sections after COMMANDS that clap does not know about.
const TAIL: &str = r#".SH "EXIT STATUS"
.TP
0
Success (\fBcheck\fR: the config is valid).
.TP
1
\fBsessions\fR: the admin endpoint refused the request.
.TP
64
Usage error: an unknown command, flag or value, or a config that does not load (EX_USAGE).
.TP
69
\fBrun\fR: a listener cannot be bound or the runtime cannot start; \fBsessions\fR: the admin endpoint cannot be reached (EX_UNAVAILABLE).
.SH ENVIRONMENT
.TP
\fBWSGATE_LOG\fR
Log level or per\-target directives (e.g. \fBwsgate=debug\fR); overrides \fBlog.level\fR.
.TP
\fBWSGATE_ADMIN_TOKEN\fR
Bearer token for the admin endpoint's session API (\fBsessions\fR).
.SH FILES
.TP
\fI/etc/wsgate/wsgate.yaml\fR
The configuration the packaged systemd unit runs with.
.TP
\fI/usr/lib/systemd/system/wsgate.service\fR, \fI/usr/lib/systemd/system/wsgate.socket\fR
The service (Type=notify, SIGHUP reloads, SIGTERM drains) and its listening socket on port 443,
passed to the listener bound to \fBsystemd:public\fR.
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.socket\fR(5)
"#;

/// The whole page: clap_mangen's title, NAME, SYNOPSIS, DESCRIPTION and OPTIONS for `wsgate`,
/// then one subsection per command (nested ones as `wsgate sessions list`), then [`TAIL`].
fn render_man(cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let page = Man::new(cmd.clone()).manual("wsgate manual");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_command(sub, out)?;
    }
    out.write_all(TAIL.as_bytes())
}

/// One `.SS` subsection per leaf command: its synopsis, its long help and its options.
fn render_command(cmd: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            render_command(sub, out)?;
        }
        return Ok(());
    }
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    writeln!(out, ".SS \"{}\"", name.replace('"', ""))?;
    let page = Man::new(cmd.clone());
    without_headings(|w| page.render_synopsis_section(w), out)?;
    without_headings(|w| page.render_description_section(w), out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        without_headings(|w| page.render_options_section(w), out)?;
    }
    Ok(())
}

/// Each clap_mangen section comes with roff's preamble (two lines defining the `Aq` string):
/// keep the first of each, drop the repeats.
fn once_each_preamble_line(page: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(page.len());
    let mut seen: Vec<&[u8]> = Vec::new();
    for line in page.split_inclusive(|&b| b == b'\n') {
        let preamble = line.starts_with(b".ie \\n(.g .ds Aq") || line.starts_with(b".el .ds Aq");
        if preamble && seen.contains(&line) {
            continue;
        }
        if preamble {
            seen.push(line);
        }
        out.extend_from_slice(line);
    }
    out
}

/// Render a clap_mangen section with its `.SH` lines dropped and a paragraph break in their
/// place, so it reads as the body of the current subsection. (roff escapes text lines that
/// start with a dot, so `.SH` at a line start is always a heading.)
fn without_headings(
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut section = Vec::new();
    render(&mut section)?;
    for line in section.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".SH ") {
            out.write_all(b".PP\n")?;
        } else {
            out.write_all(line)?;
        }
    }
    Ok(())
}
