//! `kube_harden::registry` against real registries on loopback (Debian's `docker-registry`,
//! started by the tests, tests/common/registry.rs): manifests, an index followed to a
//! platform, tag pages, digest checks, size limits, the 401 answers (Basic with htpasswd, a
//! Bearer token front), credentials from a temporary `DOCKER_CONFIG` and from a credential
//! helper on a temporary `PATH`, and a registry that is not there. No test reaches beyond
//! 127.0.0.1. The tests that start `docker-registry` are marked ignored for a machine without
//! it; `.ci/run` installs it and runs them (`--include-ignored`).

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::registry::{docker_config, free_port, Registry, TokenFront, OCI_LAYER, OCI_MANIFEST};
use kube_harden::registry::{
    Client, CredentialStore, Descriptor, Platform, Reference, RegistryError, Settings,
};

const PASSWORD: &str = "pw-5d41402abc4b2a76";

fn client(credentials: CredentialStore) -> Client {
    Client::new(Settings {
        credentials,
        ..Settings::default()
    })
    .unwrap()
}

fn reference(registry: &str, name: &str) -> Reference {
    Reference::parse(&format!("{registry}/{name}")).unwrap()
}

/// A store that reads only the `DOCKER_CONFIG` folder `dir` and the helpers on `path`.
fn docker_store(dir: &Path, path: Option<OsString>) -> CredentialStore {
    let dir = dir.to_path_buf();
    let store = CredentialStore::from_vars(move |name| match name {
        "DOCKER_CONFIG" => Some(dir.clone().into()),
        _ => None,
    });
    CredentialStore {
        helper_path: path,
        ..store
    }
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn an_image_manifest_and_its_blobs_are_read_and_verified() {
    let registry = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"User":"101"}}"#;
    let layer = b"not really a tarball, but a blob";
    let pushed = registry.push_image("team/app", "1.0", config, &[(OCI_LAYER, layer)]);
    let client = client(CredentialStore::none());
    let image = reference(&registry.host(), "team/app:1.0");

    let manifest = client.manifest(&image).unwrap();
    assert_eq!(manifest.digest, pushed.digest);
    assert_eq!(manifest.media_type, OCI_MANIFEST);
    assert_eq!(manifest.index_digest, None);
    assert_eq!(manifest.layers.len(), 1);
    assert_eq!(
        client.blob(&image, &manifest.config, 1 << 20).unwrap(),
        config
    );
    assert_eq!(
        client.blob(&image, &manifest.layers[0], 1 << 20).unwrap(),
        layer
    );
    // By digest, the same manifest.
    let pinned = image.with_digest(&pushed.digest).unwrap();
    assert_eq!(client.manifest(&pinned).unwrap().digest, pushed.digest);
    assert_eq!(client.manifest_digest(&image).unwrap(), pushed.digest);
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn an_index_is_followed_to_the_platform_asked_for() {
    let registry = Registry::start();
    let amd = registry.push_image(
        "multi",
        "amd",
        br#"{"os":"linux","architecture":"amd64"}"#,
        &[],
    );
    let arm = registry.push_image(
        "multi",
        "arm",
        br#"{"os":"linux","architecture":"arm64"}"#,
        &[],
    );
    let index = registry.push_index(
        "multi",
        "1",
        &[(&arm, "linux/arm64"), (&amd, "linux/amd64")],
    );
    let image = reference(&registry.host(), "multi:1");

    let default = client(CredentialStore::none()).manifest(&image).unwrap();
    assert_eq!(default.digest, amd.digest);
    assert_eq!(default.index_digest.as_deref(), Some(index.digest.as_str()));
    let arm64 = Client::new(Settings {
        platform: Platform::parse("linux/arm64").unwrap(),
        ..Settings::default()
    })
    .unwrap()
    .manifest(&image)
    .unwrap();
    assert_eq!(arm64.digest, arm.digest);

    let error = client(CredentialStore::none())
        .manifest_for(&image, &Platform::parse("windows/amd64").unwrap())
        .unwrap_err();
    assert!(matches!(error, RegistryError::NoPlatform { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("windows/amd64") && text.contains("linux/arm64, linux/amd64"),
        "{text}"
    );
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn a_tag_list_is_read() {
    let registry = Registry::start();
    let pushed = registry.push_image("paged", "seed", b"{}", &[]);
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[]}}"#
    );
    let mut expected = vec!["seed".to_string()];
    for i in 0..7 {
        let tag = format!("1.{i}.0");
        registry.push_manifest("paged", &tag, OCI_MANIFEST, body.as_bytes());
        expected.push(tag);
    }
    assert!(!pushed.digest.is_empty());
    let mut tags = client(CredentialStore::none())
        .tags(&reference(&registry.host(), "paged"))
        .unwrap();
    tags.sort();
    expected.sort();
    assert_eq!(tags, expected);
}

/// docker-registry 2.8 answers a tag list in one page; Docker Hub, ghcr.io and distribution 3
/// page it with `Link: <…?last=x&n=2>; rel="next"`. This server pages 5 tags by 2.
#[test]
fn tag_lists_follow_link_pages() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let all = ["a", "b", "c", "d", "e"];
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let target = head.split_whitespace().nth(1).unwrap().to_string();
            let after = target
                .split("last=")
                .nth(1)
                .map(|l| l.split('&').next().unwrap().to_string());
            let start = after.map_or(0, |l| all.iter().position(|t| *t == l).unwrap() + 1);
            let page = &all[start..(start + 2).min(all.len())];
            let link = if start + 2 < all.len() {
                format!(
                    "Link: </v2/paged/tags/list?last={}&n=2>; rel=\"next\"\r\n",
                    page[1]
                )
            } else {
                String::new()
            };
            let body = serde_json::json!({"name": "paged", "tags": page}).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{link}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    let tags = client(CredentialStore::none())
        .tags(&reference(&format!("127.0.0.1:{port}"), "paged"))
        .unwrap();
    server.join().unwrap();
    assert_eq!(tags, all);
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn a_blob_that_is_not_its_digest_is_refused() {
    let registry = Registry::start();
    let real = registry.push_blob("app", b"the real bytes");
    let client = client(CredentialStore::none());
    let image = reference(&registry.host(), "app:1");
    // A descriptor that claims `real`'s digest for a blob that the registry serves as `other`
    // cannot be made with an honest registry; a claimed size over the limit is refused before
    // any request, and a digest the registry does not have is "no such blob".
    let lying = Descriptor {
        media_type: OCI_LAYER.into(),
        digest: real.digest.clone(),
        size: 1 << 30,
        platform: None,
        annotations: Default::default(),
        artifact_type: None,
    };
    let error = client.blob(&image, &lying, 1 << 20).unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error}");
    let missing = Descriptor {
        digest: format!("sha256:{}", "0".repeat(64)),
        size: 3,
        ..lying.clone()
    };
    let error = client.blob(&image, &missing, 1 << 20).unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("no such blob"), "{error}");
}

#[test]
fn a_served_blob_whose_bytes_differ_from_the_digest_is_a_mismatch() {
    // docker-registry never serves wrong bytes; the token front is told to forward to a
    // server that does: a tiny HTTP server answering every blob with tampered bytes.
    let tampered = common::chart_server::ChartServer::start(tempfile::tempdir().unwrap().path());
    let digest = format!("sha256:{}", "a".repeat(64));
    tampered.answer(&format!("/v2/app/blobs/{digest}"), b"tampered".to_vec());
    let client = client(CredentialStore::none());
    let image = reference(&format!("127.0.0.1:{}", tampered.port()), "app:1");
    let descriptor = Descriptor {
        media_type: OCI_LAYER.into(),
        digest: digest.clone(),
        size: 8,
        platform: None,
        annotations: Default::default(),
        artifact_type: None,
    };
    let error = client.blob(&image, &descriptor, 1 << 20).unwrap_err();
    let RegistryError::DigestMismatch {
        expected, actual, ..
    } = &error
    else {
        panic!("a mismatch: {error}")
    };
    assert_eq!(expected, &digest);
    assert_eq!(actual, &common::registry::sha256_digest(b"tampered"));
    assert!(error.to_string().contains("it was not used"), "{error}");
    // A manifest asked for by digest whose bytes are other is refused the same way.
    tampered.answer(
        &format!("/v2/app/manifests/{digest}"),
        br#"{"schemaVersion":2}"#.to_vec(),
    );
    let error = client
        .manifest(&image.with_digest(&digest).unwrap())
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::DigestMismatch { .. }),
        "{error}"
    );
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn missing_tags_and_repositories_are_named() {
    let registry = Registry::start();
    registry.push_image("app", "1", b"{}", &[]);
    let client = client(CredentialStore::none());
    let error = client
        .manifest(&reference(&registry.host(), "app:2"))
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{}/app:2: ", registry.host())),
        "{text}"
    );
    assert!(text.contains("no such tag"), "{text}");
    let error = client
        .tags(&reference(&registry.host(), "nothing"))
        .unwrap_err();
    assert!(error.to_string().contains("no such repository"), "{error}");
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn basic_auth_is_refused_without_credentials_and_read_from_docker_config() {
    let registry = Registry::start_with_htpasswd("khtest", PASSWORD);
    registry.push_image("private/app", "1", b"{}", &[]);
    let image = reference(&registry.host(), "private/app:1");
    let home = tempfile::tempdir().unwrap();

    let nothing = docker_store(&home.path().join("empty"), None);
    let error = client(nothing).manifest(&image).unwrap_err();
    let RegistryError::Denied { status, how, .. } = &error else {
        panic!("denied: {error}")
    };
    assert_eq!(*status, 401);
    assert!(
        how.contains("no credentials") && how.contains("empty/config.json"),
        "{how}"
    );

    let auth = common::registry::base64(format!("khtest:{PASSWORD}").as_bytes());
    let dir = docker_config(
        &home.path().join("docker"),
        &format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    );
    let manifest = client(docker_store(&dir, None)).manifest(&image).unwrap();
    assert_eq!(manifest.config.size, 2);

    let wrong = docker_config(
        &home.path().join("wrong"),
        &format!(
            r#"{{"auths":{{"http://{}":{{"username":"khtest","password":"not-{PASSWORD}"}}}}}}"#,
            registry.host()
        ),
    );
    let error = client(docker_store(&wrong, None))
        .manifest(&image)
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("were refused") && text.contains("wrong/config.json"),
        "{text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the password is never in an error: {text}"
    );
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn a_credential_helper_on_the_path_answers_for_its_registry() {
    let registry = Registry::start_with_htpasswd("helper-user", PASSWORD);
    registry.push_image("app", "1", b"{}", &[]);
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = home.path().join("asked");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > '{}'\n\
         printf '{{\"ServerURL\":\"x\",\"Username\":\"helper-user\",\"Secret\":\"{PASSWORD}\"}}'\n",
        asked.display()
    );
    let helper = bin.join("docker-credential-khtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = docker_config(
        &home.path().join("docker"),
        &format!(r#"{{"credHelpers":{{"{}":"khtest"}}}}"#, registry.host()),
    );
    let client = client(docker_store(&dir, Some(bin.clone().into_os_string())));
    let image = reference(&registry.host(), "app:1");
    client.manifest(&image).unwrap();
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), registry.host());
    // The helper runs once for the registry, not once a request.
    std::fs::remove_file(&asked).unwrap();
    client.manifest(&image).unwrap();
    assert!(!asked.exists(), "the helper's answer is kept for the run");
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn a_bearer_challenge_is_answered_by_the_token_service_and_the_token_cached() {
    let registry = Registry::start();
    registry.push_image("org/app", "1", b"{}", &[(OCI_LAYER, b"layer")]);
    let front = TokenFront::start(&registry.host(), None, "anonymous-token");
    let client = client(CredentialStore::none());
    let image = reference(&front.host(), "org/app:1");
    let manifest = client.manifest(&image).unwrap();
    client.blob(&image, &manifest.layers[0], 1024).unwrap();
    client.tags(&image).unwrap();
    let log = front.log();
    assert_eq!(
        log.token_requests,
        vec![None],
        "one anonymous token request for the scope"
    );
    assert_eq!(log.challenged, 1);
    assert_eq!(log.forwarded, 3);
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn a_token_service_that_wants_a_login_gets_the_docker_config_credentials() {
    let registry = Registry::start();
    registry.push_image("org/app", "1", b"{}", &[]);
    let front = TokenFront::start(&registry.host(), Some(("tokenuser", PASSWORD)), "granted");
    let image = reference(&front.host(), "org/app:1");
    let home = tempfile::tempdir().unwrap();

    let error = client(docker_store(&home.path().join("none"), None))
        .manifest(&image)
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Denied { status: 401, .. }),
        "{error}"
    );

    let dir = docker_config(
        &home.path().join("docker"),
        &format!(
            r#"{{"auths":{{"{}":{{"username":"tokenuser","password":"{PASSWORD}"}}}}}}"#,
            front.host()
        ),
    );
    client(docker_store(&dir, None)).manifest(&image).unwrap();
    let log = front.log();
    let expected = format!(
        "Basic {}",
        common::registry::base64(format!("tokenuser:{PASSWORD}").as_bytes())
    );
    assert_eq!(
        log.token_requests.last().unwrap().as_deref(),
        Some(expected.as_str())
    );
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn an_identity_token_is_exchanged_at_the_token_service() {
    let registry = Registry::start();
    registry.push_image("org/app", "1", b"{}", &[]);
    let refresh = "refresh-4f9d1c2e";
    let front = TokenFront::start_with_refresh_token(&registry.host(), refresh, "access");
    let image = reference(&front.host(), "org/app:1");
    let home = tempfile::tempdir().unwrap();
    let dir = docker_config(
        &home.path().join("docker"),
        &format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{refresh}"}}}}}}"#,
            front.host()
        ),
    );
    client(docker_store(&dir, None)).manifest(&image).unwrap();
    let log = front.log();
    assert_eq!(log.token_posts.len(), 1);
    let body = &log.token_posts[0];
    for part in [
        "grant_type=refresh_token",
        "service=kube-harden-tests",
        "scope=repository%3Aorg%2Fapp%3Apull",
        &format!("refresh_token={refresh}"),
    ] {
        assert!(body.split('&').any(|p| p == part), "{part} in {body}");
    }
    assert!(log.token_requests.is_empty(), "no GET for a token");
}

#[test]
fn a_registry_that_is_not_there_is_unreachable_fast() {
    let port = free_port();
    let client = client(CredentialStore::none());
    let started = std::time::Instant::now();
    let error = client
        .manifest(&reference(&format!("127.0.0.1:{port}"), "app:1"))
        .unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}/app:1")) && text.contains("refused"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn the_registry_is_stopped_with_its_group() {
    let registry = Registry::start();
    let group = registry.group();
    assert!(!common::processes::in_group(group).is_empty());
    drop(registry);
    let left = common::processes::still_running(
        || common::processes::in_group(group),
        std::time::Duration::from_secs(5),
    );
    assert!(left.is_empty(), "left running: {left:?}");
}
