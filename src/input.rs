//! Reading a YAML file for any source: the size limit (checked on the open file), UTF-8 only,
//! and no tabs in indentation. Each refusal is a [`Status`] or a [`FileError`] with a position.

use std::path::Path;

use crate::report::{FileError, Status};

/// Reads the file at `path` as UTF-8 text, or the status that says why not: larger than
/// `limit` bytes, unreadable, or not UTF-8.
pub fn read_text(path: &Path, limit: u64) -> Result<String, Status> {
    use std::io::Read;
    // One open: the size is checked on the open file, before anything is read.
    let read = std::fs::File::open(path).and_then(|file| {
        let bytes = file.metadata()?.len();
        if bytes > limit {
            return Ok(Err(bytes));
        }
        // Read through `take`: `File::read_to_end` would ask the size again (fstat, lseek).
        let mut content = Vec::with_capacity(bytes as usize + 1);
        file.take(limit + 1).read_to_end(&mut content)?;
        if content.len() as u64 > limit {
            return Ok(Err(content.len() as u64));
        }
        Ok(Ok(content))
    });
    match read {
        Ok(Err(bytes)) => Err(Status::TooLarge { bytes, limit }),
        Ok(Ok(bytes)) => decode(bytes).map_err(Status::Failed),
        Err(e) => Err(Status::Failed(FileError::at_start(format!(
            "cannot read: {e}"
        )))),
    }
}

/// UTF-8 only: UTF-16 and Latin-1 are refused with the position of the first bad byte.
pub fn decode(bytes: Vec<u8>) -> Result<String, FileError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::at_start(
            "the file is UTF-16; kube-harden reads UTF-8 only",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        FileError {
            line,
            col,
            message: "the file is not valid UTF-8 (Latin-1?); kube-harden reads UTF-8 only".into(),
        }
    })
}

/// YAML forbids tabs in indentation; a tab there means the file is not what it looks like.
/// Lines inside block scalars may start with tabs, so only lines that parse as structure count:
/// a tab before the first non-blank character of a line that is not in a block scalar.
pub fn tab_indentation(text: &str) -> Option<FileError> {
    // Most files hold no tab at all; one memchr pass says so.
    if !text.contains('\t') {
        return None;
    }
    let mut block_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let content = line.trim_start_matches([' ', '\t']);
        let spaces = line.len() - line.trim_start_matches(' ').len();
        if let Some(min) = block_indent {
            if content.is_empty() || spaces > min {
                continue;
            }
            block_indent = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let lead = &line[..line.len() - content.len()];
        if lead.contains('\t') {
            return Some(FileError {
                line: i + 1,
                col: lead.find('\t').unwrap_or(0) + 1,
                message: "tab used for indentation".into(),
            });
        }
        let trimmed = content.trim_end();
        let header = trimmed.rsplit(' ').next().unwrap_or_default();
        if header.starts_with('|') || header.starts_with('>') {
            block_indent = Some(spaces);
        }
    }
    None
}
