//! A rule package on disk: `<dir>/<kind>/` with the kind's XSD set (entry point `CDA.xsd`)
//! and, optionally, `<kind>.sch`. Listing reads and hashes the files (bounded); checking
//! refuses what libxml2 could be made to fetch or expand (a `schemaLocation` that leaves the
//! package, a DTD); compiling is in `catalog`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bounds on one package's files.
#[derive(Debug, Clone, Copy)]
pub struct PackageLimits {
    /// Most files in one package (the ministry's largest XSD sets have a few dozen).
    pub max_files: usize,
    /// Most bytes in one package, all files together.
    pub max_bytes: u64,
    /// Deepest directory nesting inside a package.
    pub max_depth: usize,
}

impl Default for PackageLimits {
    fn default() -> Self {
        Self { max_files: 1000, max_bytes: 64 * 1024 * 1024, max_depth: 8 }
    }
}

/// What identifies a package's content: shown in `/readyz`, `check-config` and every report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageId {
    /// NSI 1520 kind id.
    pub kind: u32,
    /// SHA-256 of the package: every file's relative path and bytes, in path order (hex).
    pub sha256: String,
    /// The schematron's own description line (its first comment), if it has one, e.g.
    /// `Схематрон для СЭМД "Протокол консультации (CDA) Редакция 4"`.
    pub version: Option<String>,
    /// Whether the package has a schematron (`<kind>.sch`).
    pub schematron: bool,
}

impl PackageId {
    /// The first 12 hex digits of the hash, for logs and short displays.
    pub fn short(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }
}

/// The files of a package, read.
#[derive(Debug, Clone)]
pub struct Listing {
    pub id: PackageId,
    pub dir: PathBuf,
    /// Relative paths and sizes.
    pub files: Vec<(String, u64)>,
    pub bytes: u64,
    /// Each file's path, size and modification time as the listing found them: a package
    /// whose stamp has not changed is not read and hashed again.
    stamp: Vec<(String, u64, Option<std::time::SystemTime>)>,
}

/// Why a package was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("не читается: {0}")]
    Io(String),
    #[error("больше допустимого: {0}")]
    OverLimit(String),
    #[error("нет точки входа CDA.xsd")]
    NoEntry,
    #[error("{file}: {reason}")]
    Unsafe { file: String, reason: String },
    #[error("XSD не компилируется: {0}")]
    Xsd(String),
    #[error("схематрон не компилируется: {0}")]
    Schematron(String),
}

fn walk(
    root: &Path,
    at: &Path,
    depth: usize,
    limits: &PackageLimits,
    out: &mut Vec<(String, PathBuf, u64, Option<std::time::SystemTime>)>,
) -> Result<(), PackageError> {
    if depth > limits.max_depth {
        return Err(PackageError::OverLimit(format!("вложенность каталогов больше {}", limits.max_depth)));
    }
    let entries = std::fs::read_dir(at).map_err(|e| PackageError::Io(format!("{}: {e}", at.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackageError::Io(e.to_string()))?;
        // Symbolic links are not followed: a package is what is in its directory.
        let kind = entry.file_type().map_err(|e| PackageError::Io(e.to_string()))?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, depth + 1, limits, out)?;
        } else if kind.is_file() {
            let meta = entry.metadata().map_err(|e| PackageError::Io(e.to_string()))?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((rel, path, meta.len(), meta.modified().ok()));
            if out.len() > limits.max_files {
                return Err(PackageError::OverLimit(format!("больше {} файлов", limits.max_files)));
            }
        }
    }
    Ok(())
}

/// The schematron's description: its first comment, whitespace normalised, at most 300
/// characters.
fn version_line(sch: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sch.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sch)).ok()?;
    let start = text.find("<!--")?;
    // Only a comment before the root element describes the file.
    if text[..start].contains("<schema") || text[..start].contains(":schema") {
        return None;
    }
    let end = text[start..].find("-->")? + start;
    let line: String = text[start + 4..end].split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then(|| line.chars().take(300).collect())
}

fn hash_file(hash: &mut Sha256, rel: &str, content: &[u8]) {
    hash.update((rel.len() as u64).to_be_bytes());
    hash.update(rel.as_bytes());
    hash.update((content.len() as u64).to_be_bytes());
    hash.update(content);
}

/// Copies a listed package into `root` (a directory of this process's own), once per hash,
/// and checks that the copy is what was listed: the files libxml2 and the schematron
/// compile from then never change under them, whatever a region does to its directory
/// meanwhile. A package whose files changed since the listing is refused until the next
/// scan lists them again.
pub fn snapshot(listing: &Listing, root: &Path) -> Result<Listing, PackageError> {
    let dir = root.join(format!("{}-{}", listing.id.kind, &listing.id.sha256[..16]));
    if !dir.exists() {
        let tmp = root.join(format!(".{}-{}.tmp", listing.id.kind, &listing.id.sha256[..16]));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut hash = Sha256::new();
        for (rel, _) in &listing.files {
            let content = std::fs::read(listing.dir.join(rel)).map_err(|e| PackageError::Io(format!("{rel}: {e}")))?;
            hash_file(&mut hash, rel, &content);
            let target = tmp.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| PackageError::Io(format!("{}: {e}", parent.display())))?;
            }
            std::fs::write(&target, &content).map_err(|e| PackageError::Io(format!("{}: {e}", target.display())))?;
        }
        if hex::encode(hash.finalize()) != listing.id.sha256 {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(PackageError::Io("файлы пакета изменились во время чтения; он будет прочитан заново".into()));
        }
        std::fs::rename(&tmp, &dir).map_err(|e| PackageError::Io(format!("{}: {e}", dir.display())))?;
    }
    Ok(Listing { dir, ..listing.clone() })
}

/// Reads and hashes the package of `kind` in `dir`; `previous` (the last listing of the same
/// directory) is returned as it is when no file's size or modification time changed.
pub fn list(
    kind: u32,
    dir: &Path,
    limits: &PackageLimits,
    previous: Option<&Listing>,
) -> Result<Listing, PackageError> {
    let mut files = Vec::new();
    walk(dir, dir, 0, limits, &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let stamp: Vec<(String, u64, Option<std::time::SystemTime>)> =
        files.iter().map(|(rel, _, size, modified)| (rel.clone(), *size, *modified)).collect();
    if let Some(previous) = previous
        && previous.dir == dir
        && previous.stamp == stamp
    {
        return Ok(previous.clone());
    }
    let bytes: u64 = files.iter().map(|f| f.2).sum();
    if bytes > limits.max_bytes {
        return Err(PackageError::OverLimit(format!("{bytes} байт, допустимо {}", limits.max_bytes)));
    }
    if !files.iter().any(|f| f.0 == "CDA.xsd") {
        return Err(PackageError::NoEntry);
    }
    let sch_name = format!("{kind}.sch");
    let mut hash = Sha256::new();
    let mut version = None;
    for (rel, path, ..) in &files {
        let content = std::fs::read(path).map_err(|e| PackageError::Io(format!("{rel}: {e}")))?;
        hash_file(&mut hash, rel, &content);
        if *rel == sch_name {
            version = version_line(&content);
        }
    }
    let schematron = files.iter().any(|f| f.0 == sch_name);
    Ok(Listing {
        id: PackageId { kind, sha256: hex::encode(hash.finalize()), version, schematron },
        dir: dir.to_owned(),
        files: files.into_iter().map(|(rel, _, size, _)| (rel, size)).collect(),
        bytes,
        stamp,
    })
}

/// Refuses an XSD set libxml2 could be made to read beyond: every `schemaLocation` of an
/// `include`, `import`, `redefine` or `override` must be a relative path that stays inside
/// the package and names one of its files; no file it reaches (whatever its name) may
/// carry a DTD or an `xml:base` (which would move where libxml2 resolves locations).
pub fn check_xsd_set(listing: &Listing) -> Result<(), PackageError> {
    use quick_xml::events::Event;
    let names: std::collections::HashSet<&str> = listing.files.iter().map(|f| f.0.as_str()).collect();
    let mut queue: Vec<String> = listing.files.iter().filter(|f| f.0.ends_with(".xsd")).map(|f| f.0.clone()).collect();
    let mut seen: std::collections::HashSet<String> = queue.iter().cloned().collect();
    while let Some(rel) = queue.pop() {
        let unsafe_file = |reason: String| PackageError::Unsafe { file: rel.clone(), reason };
        let bytes = std::fs::read(listing.dir.join(&rel)).map_err(|e| PackageError::Io(format!("{rel}: {e}")))?;
        let base = Path::new(&rel).parent().unwrap_or(Path::new(""));
        let mut reader = quick_xml::Reader::from_reader(bytes.as_slice());
        loop {
            let e = match reader.read_event() {
                Err(e) => return Err(unsafe_file(format!("не является корректным XML: {e}"))),
                Ok(Event::Eof) => break,
                Ok(Event::DocType(_)) => return Err(unsafe_file("DTD не допускается".into())),
                Ok(Event::Start(e) | Event::Empty(e)) => e,
                Ok(_) => continue,
            };
            let reference = matches!(e.local_name().as_ref(), "include" | "import" | "redefine" | "override");
            for a in e.attributes() {
                let a = a.map_err(|e| unsafe_file(e.to_string()))?;
                if a.key.as_ref() == "xml:base" {
                    return Err(unsafe_file("xml:base не допускается".into()));
                }
                if !reference || a.key.local_name().as_ref() != "schemaLocation" {
                    continue;
                }
                let loc = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| unsafe_file(e.to_string()))?
                    .into_owned();
                let outside = || unsafe_file(format!("schemaLocation «{loc}» указывает за пределы пакета"));
                if loc.contains(':') || loc.starts_with('/') || loc.starts_with('\\') || loc.contains('%') {
                    return Err(outside());
                }
                let mut parts: Vec<String> =
                    base.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                for piece in loc.split(['/', '\\']) {
                    match piece {
                        "" | "." => {}
                        ".." => {
                            if parts.pop().is_none() {
                                return Err(outside());
                            }
                        }
                        p => parts.push(p.to_owned()),
                    }
                }
                let target = parts.join("/");
                if !names.contains(target.as_str()) {
                    return Err(unsafe_file(format!("schemaLocation «{loc}»: такого файла в пакете нет")));
                }
                // A referenced file is read by libxml2 whatever its name: checked the same way.
                if seen.insert(target.clone()) {
                    queue.push(target);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_is_the_first_comment() {
        let sch = "\u{feff}<!-- Схематрон для СЭМД \"Протокол\"\n  -->\n<schema/>".as_bytes();
        assert_eq!(version_line(sch).as_deref(), Some("Схематрон для СЭМД \"Протокол\""));
        assert_eq!(version_line(b"<schema><!-- inside --></schema>"), None);
    }
}
