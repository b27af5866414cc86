//! Revisions: the images a release pins and the config commit it reads shared files from.
//! A revision's id is derived from its content, so the same content always has the same id.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PromotionError;

/// One pinned image: what replaces the pipeline's image `name` in rendered manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePin {
    /// The image name as listed in the pipeline's `spec.images`.
    pub name: String,
    /// A replacement repository, when the reference names another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImagePin {
    /// Parses `REF` of `--image NAME=REF`: a tag (`1.4.2`), a digest (`sha256:…`), or a full
    /// reference (`registry/acme/web:1.4.2`, `acme/web@sha256:…`, `acme/web:1.4.2@sha256:…`).
    pub fn parse(name: &str, reference: &str) -> Result<ImagePin, String> {
        let reference = reference.trim();
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None if reference.starts_with("sha256:") => ("", Some(reference)),
            None => (reference, None),
        };
        let (repo, tag) = if rest.contains('/') || rest.contains(':') {
            let slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[slash..].rfind(':') {
                Some(i) => (Some(&rest[..slash + i]), Some(&rest[slash + i + 1..])),
                None => (Some(rest), None),
            }
        } else if rest.is_empty() {
            (None, None)
        } else {
            (None, Some(rest))
        };
        let pin = ImagePin {
            name: name.to_string(),
            new_name: repo
                .filter(|r| *r != name && !r.is_empty())
                .map(str::to_string),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        };
        pin.check(reference)?;
        Ok(pin)
    }

    fn check(&self, reference: &str) -> Result<(), String> {
        if self.tag.is_none() && self.digest.is_none() {
            return Err(format!(
                "`{reference}` pins nothing: give a tag (1.4.2) or a digest (sha256:…)"
            ));
        }
        if let Some(tag) = &self.tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(format!("`{tag}` is not a valid image tag"));
            }
        }
        if let Some(digest) = &self.digest {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(format!(
                    "`{digest}` is not a digest: expected sha256: and 64 lower-case hex digits"
                ));
            }
        }
        if let Some(repo) = &self.new_name {
            let ok = repo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
            if !ok || repo.starts_with('/') || repo.ends_with('/') {
                return Err(format!("`{repo}` is not a valid image repository"));
            }
        }
        Ok(())
    }

    /// The full reference this pin produces, for display.
    pub fn reference(&self) -> String {
        let mut out = self.new_name.clone().unwrap_or_else(|| self.name.clone());
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// An immutable release candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// `r-` and 12 hex digits of a SHA-256 over the canonical content.
    pub id: String,
    /// Pinned images, keyed by image name.
    pub images: BTreeMap<String, ImagePin>,
    /// The commit shared (not stage-owned) files are read from.
    pub config_commit: String,
    /// The branch whose tip provides stage-owned files.
    pub source_branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Revision {
    /// The content-derived id of a revision with these images and config commit.
    pub fn compute_id(
        images: &BTreeMap<String, ImagePin>,
        config_commit: &str,
        source_branch: &str,
    ) -> String {
        let canonical = serde_json::json!({
            "configCommit": config_commit,
            "sourceBranch": source_branch,
            "images": images.values().map(|p| [p.name.as_str(), p.new_name.as_deref().unwrap_or(""), p.tag.as_deref().unwrap_or(""), p.digest.as_deref().unwrap_or("")]).collect::<Vec<_>>(),
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("r-{hex}")
    }

    /// The images as one line: `acme/web:1.4.2, acme/api@sha256:…`.
    pub fn images_summary(&self) -> String {
        self.images
            .values()
            .map(ImagePin::reference)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses `--image NAME=REF` arguments against the pipeline's allowed image names.
pub fn parse_images(
    args: &[String],
    allowed: &[String],
) -> Result<BTreeMap<String, ImagePin>, PromotionError> {
    let mut images = BTreeMap::new();
    for arg in args {
        let bad = |message: String| PromotionError::BadInput(format!("--image {arg}: {message}"));
        let (name, reference) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=REF, like acme/helloworld=1.4.2".into()))?;
        let name = name.trim();
        if !allowed.iter().any(|a| a == name) {
            return Err(bad(format!(
                "`{name}` is not one of the pipeline's images ({}); add it to spec.images in environments/pipeline.yaml",
                allowed.join(", ")
            )));
        }
        let pin = ImagePin::parse(name, reference).map_err(bad)?;
        if images.insert(name.to_string(), pin).is_some() {
            return Err(bad(format!("`{name}` is given twice")));
        }
    }
    if images.is_empty() {
        return Err(PromotionError::BadInput(
            "a revision pins at least one image: pass --image NAME=REF".into(),
        ));
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_into_pins() {
        let pin = ImagePin::parse("acme/web", "1.4.2").expect("tag");
        assert_eq!(
            (pin.new_name, pin.tag.as_deref(), pin.digest),
            (None, Some("1.4.2"), None)
        );
        let pin = ImagePin::parse("acme/web", DIGEST).expect("digest");
        assert_eq!(pin.digest.as_deref(), Some(DIGEST));
        let pin = ImagePin::parse("acme/web", "registry:5000/acme/web:2.0").expect("full");
        assert_eq!(
            (pin.new_name.as_deref(), pin.tag.as_deref()),
            (Some("registry:5000/acme/web"), Some("2.0"))
        );
        let pin = ImagePin::parse("acme/web", &format!("acme/web:2.0@{DIGEST}")).expect("both");
        assert_eq!(
            (pin.new_name.as_deref(), pin.tag.as_deref()),
            (None, Some("2.0"))
        );
        assert_eq!(pin.reference(), format!("acme/web:2.0@{DIGEST}"));
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["", "acme/web", "sha256:abc", "-x", "a b", "Acme/Web:1"] {
            assert!(ImagePin::parse("acme/web", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_depend_on_content_only() {
        let images = parse_images(&["acme/web=1.0".into()], &["acme/web".into()]).expect("valid");
        let a = Revision::compute_id(&images, "abc", "main");
        assert_eq!(a, Revision::compute_id(&images, "abc", "main"));
        assert_ne!(a, Revision::compute_id(&images, "abd", "main"));
        let other = parse_images(&["acme/web=1.1".into()], &["acme/web".into()]).expect("valid");
        assert_ne!(a, Revision::compute_id(&other, "abc", "main"));
        assert!(a.starts_with("r-") && a.len() == 14, "{a}");
    }

    #[test]
    fn images_must_be_declared_and_unique() {
        let allowed = vec!["acme/web".to_string()];
        assert!(parse_images(&["acme/api=1".into()], &allowed).is_err());
        assert!(parse_images(&["acme/web=1".into(), "acme/web=2".into()], &allowed).is_err());
        assert!(parse_images(&[], &allowed).is_err());
        assert!(parse_images(&["acme/web".into()], &allowed).is_err());
    }
}
