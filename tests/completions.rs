//! What describes the command line itself: `kube-harden completions <shell>`, the man pages
//! (`kube-harden man`, `man --out-dir`) and the examples at the end of each command's `--help`.
//! Neither command may need a configuration file or a repository.
//!
//! The bash script is run by bash (completing real command lines); zsh and fish are not
//! installed where these tests were written, so their scripts are checked by what they contain
//! only, as are elvish's and PowerShell's.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

/// Every subcommand a user can type (clap's own `help` aside).
const SUBCOMMANDS: [&str; 8] = [
    "diff",
    "fix",
    "explain",
    "check",
    "pr",
    "prove",
    "completions",
    "man",
];

fn kube_harden(args: &[&str], cwd: &Path) -> Output {
    Command::cargo_bin("kube-harden")
        .unwrap()
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

/// The command's stdout, after checking that it succeeded with nothing on stderr.
fn stdout_of(args: &[&str], cwd: &Path) -> String {
    let out = kube_harden(args, cwd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A git work tree whose configuration file is broken: the commands that read a repository
/// refuse to run there.
fn broken_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".kube-harden.yaml"), "baseline: [oops\n").unwrap();
    let out = kube_harden(&["diff"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "the configuration is not broken"
    );
    dir
}

#[test]
fn each_shell_gets_a_script_that_names_every_subcommand_and_flag() {
    let dir = broken_repository();
    // How each script lists a subcommand.
    type Listed = fn(&str) -> String;
    let shells: [(&str, Listed); 5] = [
        ("bash", |c| format!("kube__harden__subcmd__{c}")),
        ("zsh", |c| format!("'{c}:")),
        ("fish", |c| format!("-a \"{c}\"")),
        ("elvish", |c| format!("cand {c} ")),
        ("powershell", |c| {
            format!("[CompletionResult]::new('{c}', '{c}'")
        }),
    ];
    for (shell, listed) in shells {
        let script = stdout_of(&["completions", shell], dir.path());
        for command in SUBCOMMANDS {
            assert!(
                script.contains(&listed(command)),
                "{shell}: no {command}:\n{script}"
            );
        }
        for flag in ["fix-dockerfiles", "sarif-file", "max-prs", "out-dir", "uid"] {
            assert!(script.contains(flag), "{shell}: no --{flag}");
        }
    }
    let zsh = stdout_of(&["completions", "zsh"], dir.path());
    assert!(zsh.starts_with("#compdef kube-harden\n"), "{zsh}");
    let fish = stdout_of(&["completions", "fish"], dir.path());
    assert!(fish.contains("complete -c kube-harden "), "{fish}");
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = kube_harden(&["completions", "tcsh"], Path::new("."));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{stderr}"
    );
}

/// What bash completes for the words of a command line (the last one being typed), with the
/// generated script loaded.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "set -e; source '{}'\nCOMP_WORDS=({}); COMP_CWORD={}\n\
         _kube__harden kube-harden '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        array.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs (it is needed for this test)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().map(str::to_string).collect()
}

#[test]
fn bash_reads_the_script_and_completes_commands_and_flags() {
    let dir = broken_repository();
    let script = stdout_of(&["completions", "bash"], dir.path());
    let path = dir.path().join("kube-harden.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash runs (it is needed for this test)");
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    assert!(script.contains("complete -F _kube__harden "), "{script}");

    assert_eq!(bash_completes(&path, &["kube-harden", "f"]), ["fix"]);
    assert_eq!(
        bash_completes(&path, &["kube-harden", "c"]),
        ["check", "completions"]
    );
    assert_eq!(
        bash_completes(&path, &["kube-harden", "fix", "--fix"]),
        ["--fix-dockerfiles"]
    );
    assert_eq!(
        bash_completes(&path, &["kube-harden", "completions", "p"]),
        ["powershell"]
    );
    assert_eq!(
        bash_completes(&path, &["kube-harden", "check", "--format", "s"]),
        ["sarif"]
    );
}

#[test]
fn man_prints_the_top_page_with_examples_and_every_subcommand() {
    let dir = broken_repository();
    let page = stdout_of(&["man"], dir.path());
    assert!(page.starts_with(".TH kube-harden 1 "), "{page}");
    assert!(page.contains("\n.SH NAME\nkube\\-harden \\- "), "{page}");
    assert!(page.contains("\n.SH SYNOPSIS\n"), "{page}");
    assert!(page.contains("\n.SH \"GLOBAL OPTIONS\"\n"), "{page}");
    assert!(page.contains("\\fB\\-\\-max\\-file\\-size\\fR"), "{page}");
    let examples = page.find("\n.SH EXAMPLES\n").expect("an EXAMPLES section");
    assert!(examples < page.find("\n.SH VERSION\n").unwrap(), "{page}");
    assert!(
        page[examples..].contains("\n.nf\nkube\\-harden diff k8s/\n.fi\n"),
        "{page}"
    );
    for command in SUBCOMMANDS {
        assert!(
            page.contains(&format!("\n.TP\nkube\\-harden\\-{command}(1)\n")),
            "no {command}:\n{page}"
        );
    }
    assert!(!page.contains("kube\\-harden\\-help"), "{page}");
}

#[test]
fn man_out_dir_writes_one_page_per_command_with_its_examples() {
    let dir = broken_repository();
    let out = kube_harden(&["man", "--out-dir", "share/man/man1"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let folder = dir.path().join("share/man/man1");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut expected: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|c| format!("kube-harden-{c}.1"))
        .chain(["kube-harden.1".to_string()])
        .collect();
    expected.sort();
    assert_eq!(files, expected);

    let top = std::fs::read_to_string(folder.join("kube-harden.1")).unwrap();
    assert_eq!(top, stdout_of(&["man"], dir.path()));
    for command in SUBCOMMANDS {
        let page =
            std::fs::read_to_string(folder.join(format!("kube-harden-{command}.1"))).unwrap();
        assert!(
            page.starts_with(&format!(".TH kube-harden-{command} 1 ")),
            "{page}"
        );
        let examples = page.find("\n.SH EXAMPLES\n").expect("an EXAMPLES section");
        assert!(
            page[examples..].contains(&format!("\n.nf\nkube\\-harden {command}")),
            "{command}:\n{page}"
        );
    }
    let pr = std::fs::read_to_string(folder.join("kube-harden-pr.1")).unwrap();
    assert!(
        pr.contains("GITHUB_TOKEN=... kube\\-harden pr \\-\\-label security \\-\\-max\\-prs 5"),
        "{pr}"
    );
}

#[test]
fn man_says_why_when_the_folder_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "a file, not a folder").unwrap();
    let out = kube_harden(&["man", "--out-dir", "taken"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("man pages not written: taken: "),
        "{stderr}"
    );
}

#[test]
fn each_command_help_ends_with_examples_of_that_command() {
    let dir = tempfile::tempdir().unwrap();
    let top = stdout_of(&["--help"], dir.path());
    assert!(top.contains("\nExamples:\n  # "), "{top}");
    for command in SUBCOMMANDS {
        for help in ["--help", "-h"] {
            let text = stdout_of(&[command, help], dir.path());
            let examples = text.find("\nExamples:\n  # ").expect("examples");
            assert!(
                text[examples..].contains(&format!("\n  kube-harden {command}")),
                "{command} {help}:\n{text}"
            );
        }
    }
}
