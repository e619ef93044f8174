//! The configuration file: the documented example, the JSON Schema and the parser agree; every
//! `fixtures/config/bad-*.yaml` fails where its first line, `# expect: line:col: fragment`,
//! says, and fails the schema where its second line, `# schema: /json/pointer`, says (`/` for
//! the top level, `yaml` when the text cannot even become JSON: duplicate keys, two documents);
//! every `good-*.yaml` passes both; defaults, exclude globs and exemption matching behave as
//! docs/config.md says.

use std::fs;
use std::path::{Path, PathBuf};

use kube_harden::config::{self, Config, Control, ControlSet, Controls, Exemption, Seccomp};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(relative: &str) -> String {
    fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn schema() -> Value {
    serde_json::from_str(&read("schema/kube-harden.schema.json")).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema compiles")
}

/// YAML to JSON through yaml_serde's own `Value`, which rejects duplicate keys: a JSON object
/// cannot hold them, so the schema alone could never see them.
fn yaml_to_json(text: &str) -> Result<Value, String> {
    let yaml: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(yaml).map_err(|e| e.to_string())
}

/// Whether the schema accepts the YAML text (a text yaml_serde cannot read counts as rejected).
fn schema_check(validator: &jsonschema::Validator, text: &str) -> Result<(), String> {
    let json = yaml_to_json(text)?;
    validator.validate(&json).map_err(|e| e.to_string())
}

/// Where the schema rejects the text: the instance paths of its errors (`/` for the top
/// level), or `yaml` when the text does not convert.
fn schema_failures(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let Ok(json) = yaml_to_json(text) else {
        return vec!["yaml".into()];
    };
    let pointer = |e: jsonschema::ValidationError<'_>| match e.instance_path().to_string() {
        p if p.is_empty() => "/".to_string(),
        p => p,
    };
    validator.iter_errors(&json).map(pointer).collect()
}

fn fixtures(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("fixtures/config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".yaml")
        })
        .collect();
    files.sort();
    files
}

/// The `# expect: 3:5: fragment` and `# schema: /pointer` lines of a bad fixture.
fn expectation(path: &Path, text: &str) -> (usize, usize, String, String) {
    let mut lines = text.lines();
    let mut header = |prefix: &str| {
        let line = lines.next().unwrap_or_default();
        let rest = line.strip_prefix(prefix);
        rest.unwrap_or_else(|| panic!("{}: `{prefix}` line missing", path.display()))
            .to_string()
    };
    let (expect, schema) = (header("# expect: "), header("# schema: "));
    let mut parts = expect.splitn(3, ':');
    let mut number = || parts.next().unwrap().trim().parse::<usize>().unwrap();
    let (l, c) = (number(), number());
    (
        l,
        c,
        parts.next().unwrap().trim().to_string(),
        schema.trim().to_string(),
    )
}

/// The one ```yaml block of README.md's "## Configuration" section, or of docs/config.md.
fn documented_example() -> (String, &'static str) {
    let readme = read("README.md");
    let (source, text) = match section(&readme, "## Configuration") {
        Some(section) => ("README.md", section.to_string()),
        None => ("docs/config.md", read("docs/config.md")),
    };
    let blocks = yaml_blocks(&text);
    assert_eq!(
        blocks.len(),
        1,
        "{source} should hold exactly one ```yaml example"
    );
    (blocks[0].clone(), source)
}

/// The text from the line `heading` to the next `## ` heading.
fn section<'t>(text: &'t str, heading: &str) -> Option<&'t str> {
    let start = text.find(&format!("\n{heading}\n"))? + 1;
    let body = start + heading.len();
    let end = text[body..]
        .find("\n## ")
        .map_or(text.len(), |i| body + i + 1);
    Some(&text[start..end])
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn exemption(workload: &str, namespace: Option<&str>, container: Option<&str>) -> Exemption {
    let (kind, name) = workload.split_once('/').unwrap();
    Exemption {
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.map(Into::into),
        container: container.map(Into::into),
        controls: ControlSet::All,
        reason: workload.into(),
    }
}

fn reasons(found: Vec<&Exemption>) -> Vec<&str> {
    found.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).expect("valid against the draft 2020-12 meta-schema");
}

#[test]
fn the_documented_example_parses_and_matches_the_schema() {
    let (example, source) = documented_example();
    let config = config::parse(&example).unwrap_or_else(|e| panic!("{source}: {e}"));
    assert_ne!(
        config,
        Config::default(),
        "{source}: the example should show some keys"
    );
    let json = yaml_serde::from_str::<Value>(&example).expect("the example is YAML");
    let validator = jsonschema::validator_for(&schema()).unwrap();
    if let Err(e) = validator.validate(&json) {
        panic!("{source}: the example fails the schema: {e}");
    }
}

#[test]
fn bad_fixtures_fail_at_the_expected_place_and_fail_the_schema() {
    let files = fixtures("bad-");
    assert!(files.len() >= 12, "only {} bad fixtures", files.len());
    let validator = validator();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| check_bad(&validator, p).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One bad fixture: the parser's error and the schema's verdict.
fn check_bad(validator: &jsonschema::Validator, path: &Path) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = fs::read_to_string(path).unwrap();
    let (line, col, fragment, schema_at) = expectation(path, &text);
    let err = match config::parse(&text) {
        Ok(config) => return Err(format!("{name}: parsed, but should fail: {config:?}")),
        Err(err) => err,
    };
    let expected = format!("{line}:{col}: {fragment}");
    if (err.line, err.col) != (line, col)
        || !err.message.contains(&fragment)
        || err.message.contains('\n')
    {
        return Err(format!(
            "{name}: got {}:{}: {}\n  expected {expected}",
            err.line, err.col, err.message
        ));
    }
    let failures = schema_failures(validator, &text);
    if !failures.contains(&schema_at) {
        return Err(format!(
            "{name}: the schema fails at {failures:?}, expected at {schema_at}"
        ));
    }
    Ok(())
}

#[test]
fn the_bad_fixtures_cover_each_kind_of_mistake() {
    let names: Vec<String> = fixtures("bad-")
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    for wanted in [
        "bad-unknown-top-level-key",
        "bad-unknown-nested-key",
        "bad-bool-wrong-type",
        "bad-host-access-pods-wrong-type",
        "bad-id-string",
        "bad-id-zero",
        "bad-id-negative",
        "bad-seccomp-value",
        "bad-render-value",
        "bad-engine-timeout-zero",
        "bad-localhost-without-profile",
        "bad-glob",
        "bad-empty-reason",
        "bad-unknown-control-name",
        "bad-exemption-without-workload",
        "bad-top-level-list",
        "bad-duplicate-key",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "missing fixture {wanted}.yaml"
        );
    }
}

#[test]
fn good_fixtures_parse_and_match_the_schema() {
    let files = fixtures("good-");
    assert!(files.len() >= 4, "only {} good fixtures", files.len());
    let validator = validator();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&path).unwrap();
        if let Err(e) = config::parse(&text) {
            panic!("{name}: {e}");
        }
        if let Err(e) = schema_check(&validator, &text) {
            panic!("{name}: the schema rejects it: {e}");
        }
    }
}

#[test]
fn an_empty_file_means_every_default() {
    let expected = Config {
        baseline: config::BaselineConfig {
            run_as_user: 1000,
            run_as_group: 1000,
            fs_group: 1000,
            seccomp: Seccomp::RuntimeDefault,
            ids_given: false,
        },
        controls: Controls {
            run_as_non_root: true,
            run_as_user: true,
            run_as_group: true,
            fs_group: true,
            seccomp_profile: true,
            allow_privilege_escalation: true,
            read_only_root_filesystem: true,
            capabilities_drop: true,
            capabilities_add: true,
        },
        writable_tmp: true,
        harden_host_access_pods: false,
        render: config::RenderMode::Auto,
        engine_timeout: 120,
        images: kube_harden::images::ImagesMode::Auto,
        platform: kube_harden::registry::Platform::default(),
        insecure_registries: vec![],
        image_volumes_as_notes: false,
        exclude: vec![],
        exemptions: vec![],
        services: vec![],
    };
    assert_eq!(Config::default(), expected);
    for text in [
        "",
        "# nothing yet\n",
        "{}\n",
        "baseline: {}\ncontrols: {}\n",
    ] {
        assert_eq!(config::parse(text).unwrap(), expected, "{text:?}");
    }
    assert!(Control::ALL.iter().all(|&c| expected.controls.is_on(c)));
    // No file and an empty file mean the same rules as the policy's own defaults.
    assert_eq!(expected.rules(), kube_harden::policy::Rules::default());
    assert!(expected.rules().writable_tmp && !expected.rules().harden_host_access);
}

#[test]
fn every_key_is_read() {
    let config = config::parse(&read("fixtures/config/good-full.yaml")).unwrap();
    assert_eq!(config.baseline.run_as_user, 10001);
    assert_eq!(config.baseline.run_as_group, 10002);
    assert_eq!(config.baseline.fs_group, 10003);
    assert_eq!(config.baseline.seccomp, Seccomp::RuntimeDefault);
    let off: Vec<Control> = Control::ALL
        .into_iter()
        .filter(|&c| !config.controls.is_on(c))
        .collect();
    assert_eq!(off, [Control::RunAsGroup, Control::FsGroup]);
    assert!(!config.writable_tmp);
    assert!(config.harden_host_access_pods);
    assert_eq!(config.render, config::RenderMode::Always);
    assert_eq!(config.engine_timeout, 30);
    assert_eq!(config.images, kube_harden::images::ImagesMode::Always);
    assert_eq!(config.platform.to_string(), "linux/arm64");
    assert_eq!(config.insecure_registries, ["registry.internal:5000"]);
    assert!(config.image_volumes_as_notes);
    assert!(config.baseline.ids_given);
    let rules = config.rules();
    assert!(!rules.writable_tmp && rules.harden_host_access);
    assert_eq!(
        config.exclude,
        ["legacy/**", "**/*-test.yaml", "*.bak", "/generated/"]
    );
    assert_eq!(config.exemptions.len(), 2);
    let billing = &config.exemptions[0];
    assert_eq!(
        (billing.kind.as_str(), billing.name.as_str()),
        ("Deployment", "billing")
    );
    assert_eq!(billing.namespace.as_deref(), Some("payments"));
    assert_eq!(billing.container.as_deref(), Some("app"));
    assert_eq!(
        billing.controls,
        ControlSet::List(vec![
            Control::ReadOnlyRootFilesystem,
            Control::CapabilitiesDrop
        ])
    );
    assert!(billing.covers(Control::CapabilitiesDrop) && !billing.covers(Control::RunAsUser));
    assert_eq!(billing.reason, "writes its cache to /var/cache");
    assert_eq!(
        (
            config.exemptions[1].kind.as_str(),
            config.exemptions[1].controls.clone()
        ),
        ("*", ControlSet::All)
    );
    assert_eq!(
        config.services,
        [config::NamedService {
            name: "payments".into(),
            paths: vec!["services/payments/".into(), "services/ledger/**".into()],
        }]
    );
    let matchers = config.service_matchers();
    assert!(matchers[0]
        .1
        .is_excluded(Path::new("services/ledger/s.yaml")));
    assert!(!matchers[0].1.is_excluded(Path::new("services/cart/d.yaml")));
}

#[test]
fn localhost_seccomp_carries_its_profile() {
    let config = config::parse(&read("fixtures/config/good-localhost.yaml")).unwrap();
    assert_eq!(
        config.baseline.seccomp,
        Seccomp::Localhost {
            profile: "profiles/app.json".into()
        }
    );
}

#[test]
fn quoted_strings_stay_strings() {
    let config = config::parse(&read("fixtures/config/good-quoted-strings.yaml")).unwrap();
    let e = &config.exemptions[0];
    assert_eq!(
        (e.namespace.as_deref(), e.container.as_deref()),
        (Some("2024"), Some("true"))
    );
    assert_eq!(e.reason, "yes");
}

#[test]
fn exclude_globs_follow_gitignore_rules() {
    let config = Config {
        exclude: [
            "legacy/**",
            "**/*-test.yaml",
            "*.bak",
            "/generated/",
            "vendor",
            "apps/*/dev.yaml",
        ]
        .map(String::from)
        .to_vec(),
        ..Config::default()
    };
    let excluded = |p: &str| config.excludes(Path::new(p));
    // `legacy/**`: anchored at the root, everything below.
    assert!(
        excluded("legacy/a.yaml") && excluded("legacy/deep/b.yaml") && excluded("./legacy/c.yaml")
    );
    assert!(!excluded("apps/legacy/a.yaml") && !excluded("legacy.yaml"));
    // `**/*-test.yaml`: any depth, `*` within one name.
    assert!(excluded("api-test.yaml") && excluded("apps/api/api-test.yaml"));
    assert!(!excluded("apps/api-test.yaml.orig") && !excluded("apps/api.yaml"));
    // `*.bak`: no slash, so any depth.
    assert!(excluded("x.bak") && excluded("apps/x.bak"));
    // `/generated/`: a root folder only.
    assert!(
        excluded("generated/a.yaml")
            && !excluded("generated")
            && !excluded("apps/generated/a.yaml")
    );
    // `vendor`: a file or folder of that name at any depth, and everything inside.
    assert!(excluded("vendor") && excluded("third/vendor/x/y.yaml"));
    assert!(!excluded("vendors/x.yaml"));
    // `*` does not cross `/`.
    assert!(excluded("apps/api/dev.yaml") && !excluded("apps/api/v2/dev.yaml"));
    assert!(!excluded("apps/api/prod.yaml"));

    let matcher = config.exclude_matcher();
    assert!(matcher.is_excluded(Path::new("legacy/a.yaml")));
    assert!(!Config::default().excludes(Path::new("legacy/a.yaml")));
}

#[test]
fn exemptions_match_kind_name_namespace_and_container() {
    let config = Config {
        exemptions: vec![
            exemption("Deployment/billing", None, None),
            exemption("Deployment/billing-*", Some("payments"), None),
            exemption("*/node-exporter", None, None),
            exemption("StatefulSet/db", None, Some("postgres")),
            exemption("{Deployment,StatefulSet}/api?", None, None),
        ],
        ..Config::default()
    };
    let find = |kind, name, ns, container| reasons(config.exemption_for(kind, name, ns, container));
    // Exact kind and name; without a container it covers the pod and every container.
    assert_eq!(
        find("Deployment", "billing", None, None),
        ["Deployment/billing"]
    );
    assert_eq!(
        find("Deployment", "billing", Some("x"), Some("app")),
        ["Deployment/billing"]
    );
    assert!(find("StatefulSet", "billing", None, None).is_empty());
    assert!(
        find("deployment", "billing", None, None).is_empty(),
        "kinds are case-sensitive"
    );
    // A name glob, limited to a namespace the manifest must state.
    assert_eq!(
        find("Deployment", "billing-api", Some("payments"), None),
        ["Deployment/billing-*"]
    );
    assert!(find("Deployment", "billing-api", Some("default"), None).is_empty());
    assert!(find("Deployment", "billing-api", None, None).is_empty());
    // A kind glob.
    assert_eq!(
        find("DaemonSet", "node-exporter", None, Some("agent")),
        ["*/node-exporter"]
    );
    assert_eq!(
        find("StatefulSet", "api1", None, None),
        ["{Deployment,StatefulSet}/api?"]
    );
    assert!(find("Job", "api1", None, None).is_empty());
    // A container-scoped exemption covers that container only, not the pod.
    assert_eq!(
        find("StatefulSet", "db", None, Some("postgres")),
        ["StatefulSet/db"]
    );
    assert!(find("StatefulSet", "db", None, Some("backup")).is_empty());
    assert!(find("StatefulSet", "db", None, None).is_empty());
}

#[test]
fn find_prefers_yaml_over_yml() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(config::find(dir.path()), None);
    fs::write(dir.path().join(".kube-harden.yml"), "writableTmp: false\n").unwrap();
    assert_eq!(
        config::find(dir.path()),
        Some(dir.path().join(".kube-harden.yml"))
    );
    fs::write(dir.path().join(".kube-harden.yaml"), "").unwrap();
    assert_eq!(
        config::find(dir.path()),
        Some(dir.path().join(".kube-harden.yaml"))
    );
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::create_dir(dir.path().join("sub/.kube-harden.yaml")).unwrap();
    assert_eq!(
        config::find(&dir.path().join("sub")),
        None,
        "a folder is not a config file"
    );
}

#[test]
fn load_names_the_file_in_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci.yaml");
    fs::write(&path, "writableTmp: false\n").unwrap();
    assert!(!config::load(&path).unwrap().writable_tmp);

    fs::write(&path, "baseline:\n  runAsUser: 0\n").unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(err.path, path.display().to_string());
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:14: `runAsUser` must be an integer from 1 to 2147483647, found 0 (root)",
            path.display()
        )
    );

    fs::write(&path, b"exclude:\n  - \"caf\xe9\"\n").unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(
        (err.line, err.col, err.message.as_str()),
        (2, 9, "the file is not UTF-8")
    );

    let err = config::load(&dir.path().join("missing.yaml")).unwrap_err();
    assert_eq!((err.line, err.col), (0, 0));
    assert!(
        err.to_string()
            .contains("missing.yaml:0:0: cannot read the configuration file"),
        "{err}"
    );
}

#[test]
fn parse_names_the_default_file_and_keeps_messages_on_one_line() {
    let err = config::parse("exclude: [\"a\\nb[\"]\n").unwrap_err();
    assert_eq!(err.path, ".kube-harden.yaml");
    assert!(
        err.to_string()
            .starts_with(".kube-harden.yaml:1:11: bad glob `a\\nb[`"),
        "{err}"
    );
}

#[test]
fn the_readme_section_is_found_when_the_lead_adds_it() {
    let readme = "# x\n\n## Configuration\n\nText.\n\n```yaml\nwritableTmp: false\n```\n\n## Commands\n\n```yaml\nother: 1\n```\n";
    let found = section(readme, "## Configuration").unwrap();
    assert!(found.starts_with("## Configuration\n") && !found.contains("## Commands"));
    assert_eq!(yaml_blocks(found), ["writableTmp: false\n"]);
    assert_eq!(section("# x\n## Commands\n", "## Configuration"), None);
}
