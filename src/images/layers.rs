//! What an image's layers hold that its config does not say: `/etc/passwd` and `/etc/group`
//! (the topmost layer that has the file wins; a whiteout `.wh.passwd`, or an opaque `/etc`,
//! hides the lower layers' copies), and for a root image the paths of its top layers that only
//! root may read. Layers are read as tar streams: gzip, zstd (with `ruzstd`: pure Rust; every
//! frame, skippable ones skipped) or plain.

use std::io::Read;

use crate::policy::images::ImageUser;
use crate::registry::{Client, Descriptor, Reference, RegistryError};

/// The most one layer may weigh to be read.
const LAYER_LIMIT: u64 = 512 * 1024 * 1024;
/// The most of `/etc/passwd` or `/etc/group` read.
const ACCOUNT_FILE_LIMIT: u64 = 1024 * 1024;
/// The top layers searched for root-only paths, and the most paths named.
const ROOT_ONLY_LAYERS: usize = 2;
pub const ROOT_ONLY_PATHS: usize = 5;

/// The account files found in the layers (None: no layer has it, or a whiteout hides it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// What one file is in the layers read so far.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Unknown,
    Found(String),
    Hidden,
}

/// `/etc/passwd` and `/etc/group`, reading layers from the top until both are decided.
pub fn account_files(
    client: &Client,
    reference: &Reference,
    layers: &[Descriptor],
) -> Result<AccountFiles, RegistryError> {
    let mut passwd = Seen::Unknown;
    let mut group = Seen::Unknown;
    for layer in layers.iter().rev() {
        if passwd != Seen::Unknown && group != Seen::Unknown {
            break;
        }
        let bytes = client.blob(reference, layer, LAYER_LIMIT)?;
        let read = account_files_in_layer(&layer.media_type, &bytes).map_err(|why| {
            RegistryError::BadAnswer {
                reference: reference
                    .with_digest(&layer.digest)
                    .map_or_else(|_| reference.to_string(), |r| r.to_string()),
                reason: format!("the layer cannot be read: {why}"),
            }
        })?;
        decide(&mut passwd, read.0);
        decide(&mut group, read.1);
    }
    let found = |s: Seen| match s {
        Seen::Found(text) => Some(text),
        _ => None,
    };
    Ok(AccountFiles {
        passwd: found(passwd),
        group: found(group),
    })
}

/// A lower layer decides only what the upper ones left unknown.
fn decide(seen: &mut Seen, layer: Seen) {
    if *seen == Seen::Unknown {
        *seen = layer;
    }
}

/// What one layer says of `etc/passwd` and `etc/group`.
fn account_files_in_layer(media_type: &str, bytes: &[u8]) -> Result<(Seen, Seen), String> {
    let mut passwd = Seen::Unknown;
    let mut group = Seen::Unknown;
    let mut opaque_etc = false;
    for_each_entry(media_type, bytes, &mut |path, entry| {
        match path {
            "etc/passwd" => passwd = Seen::Found(read_text(entry)?),
            "etc/group" => group = Seen::Found(read_text(entry)?),
            "etc/.wh.passwd" => passwd = Seen::Hidden,
            "etc/.wh.group" => group = Seen::Hidden,
            "etc/.wh..wh..opq" | ".wh.etc" => opaque_etc = true,
            _ => {}
        }
        Ok(())
    })?;
    // An opaque /etc hides the lower layers' files; this layer's own still count.
    if opaque_etc {
        for seen in [&mut passwd, &mut group] {
            if *seen == Seen::Unknown {
                *seen = Seen::Hidden;
            }
        }
    }
    Ok((passwd, group))
}

fn read_text(entry: &mut dyn Read) -> Result<String, String> {
    let mut text = String::new();
    entry
        .take(ACCOUNT_FILE_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| format!("not UTF-8 text or unreadable: {e}"))?;
    Ok(text)
}

/// The uid and gid of user `name` (and group `group`, a name or a number) from the files.
pub fn resolve(name: &str, group: Option<&str>, files: &AccountFiles) -> ImageUser {
    let unresolved = |why: String| ImageUser::Unresolved { why };
    let Some(passwd) = &files.passwd else {
        return unresolved("cannot be resolved: the image has no /etc/passwd".into());
    };
    let entry = |text: &str, wanted: &str, id_field: usize| {
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&wanted)).then(|| {
                (
                    fields.get(id_field).and_then(|n| n.parse::<i64>().ok()),
                    fields.get(3).and_then(|n| n.parse::<i64>().ok()),
                )
            })
        })
    };
    let uid_and_group = match name.parse::<i64>() {
        Ok(uid) => Some((Some(uid), None)),
        Err(_) => entry(passwd, name, 2),
    };
    let Some((Some(uid), primary)) = uid_and_group else {
        return unresolved("is not in the image's /etc/passwd".into());
    };
    let gid = match group {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<i64>() {
            Ok(gid) => gid,
            Err(_) => match files.group.as_deref().and_then(|t| entry(t, g, 2)) {
                Some((Some(gid), _)) => gid,
                _ => {
                    return unresolved(format!(
                        "has group `{g}`, which is not in the image's /etc/group"
                    ))
                }
            },
        },
    };
    if uid == 0 {
        return ImageUser::Root;
    }
    ImageUser::Ids { uid, gid }
}

/// For a root image: paths of its top layers that only root may read or enter (owned by uid
/// 0, no group or other bits: `0700` folders, `0600` files), the first few.
pub fn root_only_paths(
    client: &Client,
    reference: &Reference,
    layers: &[Descriptor],
) -> Result<Vec<String>, RegistryError> {
    let mut paths = Vec::new();
    for layer in layers.iter().rev().take(ROOT_ONLY_LAYERS) {
        let bytes = client.blob(reference, layer, LAYER_LIMIT)?;
        // A layer that cannot be read here only costs the list its paths.
        let _ = root_only_in_layer(&layer.media_type, &bytes, &mut paths);
        if paths.len() >= ROOT_ONLY_PATHS {
            break;
        }
    }
    paths.truncate(ROOT_ONLY_PATHS);
    Ok(paths)
}

fn root_only_in_layer(
    media_type: &str,
    bytes: &[u8],
    paths: &mut Vec<String>,
) -> Result<(), String> {
    let mut found = Vec::new();
    let mut visit = |path: &str, header: &tar::Header| {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.starts_with(".wh.") || path.is_empty() {
            return;
        }
        let kind = header.entry_type();
        let (Ok(uid), Ok(mode)) = (header.uid(), header.mode()) else {
            return;
        };
        let root_only = uid == 0 && mode & 0o077 == 0 && mode & 0o700 != 0;
        if root_only && (kind.is_dir() || kind.is_file()) {
            found.push(format!(
                "/{} ({:04o})",
                path.trim_end_matches('/'),
                mode & 0o7777
            ));
        }
    };
    walk_headers(media_type, bytes, &mut visit)?;
    for path in found {
        if paths.len() >= ROOT_ONLY_PATHS {
            break;
        }
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(())
}

/// The layer's entries, each with its path (`./` and `/` taken off the front).
fn for_each_entry(
    media_type: &str,
    bytes: &[u8],
    visit: &mut dyn FnMut(&str, &mut dyn Read) -> Result<(), String>,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(decompressed(media_type, bytes)?);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path_bytes();
        let path = normalise(&String::from_utf8_lossy(&path));
        visit(&path, &mut entry)?;
    }
    Ok(())
}

fn walk_headers(
    media_type: &str,
    bytes: &[u8],
    visit: &mut dyn FnMut(&str, &tar::Header),
) -> Result<(), String> {
    let mut archive = tar::Archive::new(decompressed(media_type, bytes)?);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
        visit(&path, entry.header());
    }
    Ok(())
}

fn normalise(path: &str) -> String {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    path.to_string()
}

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A layer's tar stream: zstd or gzip by media type (or by their magic bytes), plain tar
/// otherwise.
fn decompressed<'a>(media_type: &str, bytes: &'a [u8]) -> Result<Box<dyn Read + 'a>, String> {
    if media_type.contains("zstd") || bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(Box::new(ZstdFrames {
            rest: bytes,
            frame: None,
        }));
    }
    if media_type.contains("gzip") || bytes.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(bytes)))
    } else {
        Ok(Box::new(bytes))
    }
}

/// A zstd stream read as one: every frame in turn (a layer may hold several, as zstd:chunked
/// ones do), skippable frames skipped.
struct ZstdFrames<'a> {
    /// What is left after the frame being read.
    rest: &'a [u8],
    frame: Option<ruzstd::decoding::StreamingDecoder<&'a [u8], ruzstd::decoding::FrameDecoder>>,
}

impl Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::StreamingDecoder;
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.rest = self.frame.take().map_or(self.rest, |f| f.into_inner());
            }
            if self.rest.is_empty() {
                return Ok(0);
            }
            match StreamingDecoder::new(self.rest) {
                Ok(frame) => self.frame = Some(frame),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    // Its magic number and length (4 bytes each), then `length` bytes.
                    let end = 8 + length as usize;
                    self.rest = self.rest.get(end..).ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "a skippable zstd frame runs past the end",
                        )
                    })?;
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not a zstd frame: {e}"),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8], u32, u64)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode, uid) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_uid(*uid);
            if path.ends_with('/') {
                header.set_entry_type(tar::EntryType::Directory);
            }
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_zstd_layer_of_several_frames_is_read_whole() {
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let tar = tar_of(&[
            ("etc/", b"", 0o755, 0),
            ("etc/passwd", b"app:x:2002:2003::/:/bin/sh\n", 0o644, 0),
            ("etc/group", b"app:x:2003:\n", 0o644, 0),
        ]);
        // The tar in two frames, with a skippable frame between them.
        let (head, tail) = tar.split_at(700);
        let mut layer = compress_to_vec(head, CompressionLevel::Fastest);
        layer.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        layer.extend(compress_to_vec(tail, CompressionLevel::Fastest));
        let read =
            account_files_in_layer("application/vnd.oci.image.layer.v1.tar+zstd", &layer).unwrap();
        assert_eq!(
            read,
            (
                Seen::Found("app:x:2002:2003::/:/bin/sh\n".into()),
                Seen::Found("app:x:2003:\n".into())
            )
        );
        // Bytes that are no zstd frame are an error, not an empty layer.
        let broken = [ZSTD_MAGIC.as_slice(), b"not zstd at all"].concat();
        assert!(
            account_files_in_layer("application/vnd.oci.image.layer.v1.tar+zstd", &broken).is_err()
        );
    }

    #[test]
    fn a_whiteout_hides_a_lower_passwd_and_the_top_copy_wins() {
        let top = tar_of(&[("etc/.wh.passwd", b"", 0o644, 0)]);
        assert_eq!(
            account_files_in_layer("application/vnd.oci.image.layer.v1.tar", &top).unwrap(),
            (Seen::Hidden, Seen::Unknown)
        );
        let mut passwd = Seen::Unknown;
        decide(
            &mut passwd,
            Seen::Found("app:x:1001:1001::/:/bin/sh\n".into()),
        );
        decide(&mut passwd, Seen::Found("root:x:0:0::/:/bin/sh\n".into()));
        assert_eq!(passwd, Seen::Found("app:x:1001:1001::/:/bin/sh\n".into()));
    }

    #[test]
    fn an_opaque_etc_hides_what_this_layer_does_not_have() {
        let layer = tar_of(&[
            ("./etc/.wh..wh..opq", b"", 0o644, 0),
            ("./etc/group", b"app:x:2000:\n", 0o644, 0),
        ]);
        let (passwd, group) = account_files_in_layer("x.tar", &layer).unwrap();
        assert_eq!(passwd, Seen::Hidden);
        assert_eq!(group, Seen::Found("app:x:2000:\n".into()));
    }

    #[test]
    fn names_resolve_through_passwd_and_group() {
        let files = AccountFiles {
            passwd: Some("root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/app:/bin/sh\n".into()),
            group: Some("root:x:0:\nweb:x:3000:\n".into()),
        };
        assert_eq!(
            resolve("app", None, &files),
            ImageUser::Ids {
                uid: 1001,
                gid: 1002
            }
        );
        assert_eq!(
            resolve("app", Some("web"), &files),
            ImageUser::Ids {
                uid: 1001,
                gid: 3000
            }
        );
        assert_eq!(
            resolve("app", Some("55"), &files),
            ImageUser::Ids { uid: 1001, gid: 55 }
        );
        assert!(matches!(
            resolve("nobody", None, &files),
            ImageUser::Unresolved { .. }
        ));
        assert!(matches!(
            resolve("app", Some("db"), &files),
            ImageUser::Unresolved { .. }
        ));
        assert!(matches!(
            resolve("app", None, &AccountFiles::default()),
            ImageUser::Unresolved { .. }
        ));
    }

    #[test]
    fn root_only_paths_are_root_owned_without_group_or_other_bits() {
        let layer = tar_of(&[
            ("app/", b"", 0o700, 0),
            ("app/config", b"x", 0o600, 0),
            ("app/public", b"x", 0o644, 0),
            ("home/app/", b"", 0o700, 1001),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &layer).unwrap();
        let gz = gz.finish().unwrap();
        let mut paths = Vec::new();
        root_only_in_layer(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gz,
            &mut paths,
        )
        .unwrap();
        assert_eq!(paths, vec!["/app (0700)", "/app/config (0600)"]);
        // Gzip bytes said to be zstd: an error, not an empty layer.
        let mut none = Vec::new();
        assert!(root_only_in_layer(
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &gz,
            &mut none
        )
        .is_err());
    }
}
