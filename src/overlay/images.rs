//! The `images:` transformer: rewrites container images by name to a new name, tag or digest
//! in every `containers` and `initContainers` list of every kind (CustomResourceDefinitions
//! aside), exactly as kustomize's image tag transformer does.

use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

use super::config::defaults;
use super::fieldspec::{Create, FieldSpec, apply_all};
use super::kustomization::ImageSpec;
use super::pattern::Plain;
use super::resource::Resource;

/// An image rewrite a revision applies after rendering (kustomize `images:` semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOverride {
    /// The image to match, without tag or digest (e.g. `acme/web`).
    pub name: String,
    /// A replacement image name.
    pub new_name: Option<String>,
    /// A replacement tag.
    pub new_tag: Option<String>,
    /// A digest (`sha256:…`) to pin; with a tag, both are kept.
    pub digest: Option<String>,
}

impl From<&ImageOverride> for ImageSpec {
    fn from(image: &ImageOverride) -> ImageSpec {
        ImageSpec {
            name: image.name.clone(),
            new_name: image.new_name.clone().unwrap_or_default(),
            new_tag: image.new_tag.clone().unwrap_or_default(),
            digest: image.digest.clone().unwrap_or_default(),
            tag_suffix: String::new(),
        }
    }
}

/// Applies `images` to `resources` in order, as a final `images:` transformer.
pub fn apply_images(resources: &mut [Resource], images: &[ImageOverride]) {
    for image in images {
        let spec = ImageSpec::from(image);
        let rewrite = Rewrite::new(&spec).unwrap_or_else(|_| Rewrite::literal(&spec));
        for resource in resources.iter_mut() {
            // The only failures are fields that are not images at all; those stay as they are.
            let _ = rewrite.resource(resource, &defaults().images);
        }
    }
}

/// Applies one image rewrite to every container list and to the image fields `specs` name
/// (an ImageTagTransformer).
pub fn apply_image_with(
    resources: &mut [Resource],
    spec: &ImageSpec,
    specs: &[FieldSpec],
) -> Result<(), String> {
    let rewrite = Rewrite::new(spec)?;
    for resource in resources.iter_mut() {
        rewrite.resource(resource, specs)?;
    }
    Ok(())
}

/// One compiled `images:` entry.
struct Rewrite<'a> {
    spec: &'a ImageSpec,
    name: ImageName,
}

/// How an `images:` entry's name is matched: the name (a regular expression), then an
/// optional tag and an optional digest, and nothing else.
enum ImageName {
    /// A name without regular-expression syntax (nearly all of them), matched without one.
    Plain(Plain),
    /// `^NAME(:TAG)?(@sha256:DIGEST)?$`.
    Regex(Arc<Regex>),
}

impl ImageName {
    fn is_match(&self, image: &str) -> bool {
        match self {
            ImageName::Plain(name) => name
                .prefix(image)
                .is_some_and(|end| is_tag_and_digest(&image[end..])),
            ImageName::Regex(regex) => regex.is_match(image),
        }
    }
}

/// Whether `rest` is what the pattern's `(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$`
/// matches. Neither `:` nor `@` is in the class, so the match is the one found greedily.
fn is_tag_and_digest(rest: &str) -> bool {
    let class = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '{' | '}' | '-');
    let mut rest = rest;
    if let Some(tag) = rest.strip_prefix(':') {
        rest = tag.trim_start_matches(class);
    }
    if let Some(digest) = rest.strip_prefix("@sha256:") {
        rest = digest.trim_start_matches(class);
    }
    rest.is_empty()
}

impl<'a> Rewrite<'a> {
    fn new(spec: &'a ImageSpec) -> Result<Rewrite<'a>, String> {
        Self::with_name(spec, &spec.name)
            .map_err(|err| format!("invalid image name {:?}: {err}", spec.name))
    }

    fn literal(spec: &'a ImageSpec) -> Rewrite<'a> {
        Rewrite {
            spec,
            name: ImageName::Plain(Plain::literal(&spec.name)),
        }
    }

    fn with_name(spec: &'a ImageSpec, name: &str) -> Result<Rewrite<'a>, regex::Error> {
        let name = match Plain::parse(name) {
            Some(plain) => ImageName::Plain(plain),
            None => ImageName::Regex(super::pattern::compiled(&format!(
                "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
            ))?),
        };
        Ok(Rewrite { spec, name })
    }

    fn resource(&self, resource: &mut Resource, specs: &[FieldSpec]) -> Result<(), String> {
        if resource.kind() == "CustomResourceDefinition" {
            return Ok(());
        }
        self.containers_anywhere(&mut resource.value)?;
        apply_all(&mut resource.value, specs, Create::Nothing, &mut |v| {
            self.image(v)
        })
    }

    /// Every `containers` / `initContainers` list at any depth.
    fn containers_anywhere(&self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    self.containers_anywhere(child)?;
                    if key == "containers" || key == "initContainers" {
                        self.container_list(child)?;
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.containers_anywhere(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn container_list(&self, list: &mut Value) -> Result<(), String> {
        let Value::Array(items) = list else {
            return Ok(());
        };
        for item in items {
            if let Some(image) = item.as_object_mut().and_then(|c| c.get_mut("image")) {
                self.image(image)?;
            }
        }
        Ok(())
    }

    fn image(&self, value: &mut Value) -> Result<(), String> {
        let current = match value {
            Value::String(s) => s.as_str(),
            Value::Null => return Ok(()),
            Value::Object(_) | Value::Array(_) => {
                return Err("wrong node kind: expected ScalarNode for an image".to_string());
            }
            _ => return Ok(()),
        };
        if !self.name.is_match(current) {
            return Ok(());
        }
        *value = Value::String(rewrite(current, self.spec));
        Ok(())
    }
}

fn rewrite(current: &str, spec: &ImageSpec) -> String {
    let (mut name, mut tag, mut digest) = split(current);
    if !spec.new_name.is_empty() {
        name = spec.new_name.clone();
    }
    if !spec.new_tag.is_empty() && !spec.digest.is_empty() {
        tag = spec.new_tag.clone();
        digest = spec.digest.clone();
    } else if !spec.new_tag.is_empty() {
        tag = spec.new_tag.clone();
        digest.clear();
    } else if !spec.digest.is_empty() {
        tag.clear();
        digest = spec.digest.clone();
    } else if !spec.tag_suffix.is_empty() {
        tag.push_str(&spec.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    name
}

/// Splits `registry:5000/app:tag@sha256:…` into name, tag and digest.
fn split(image: &str) -> (String, String, String) {
    let offset = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[offset..];
    let at = search.find('@').map(|i| i + offset);
    let colon = search.find(':').map(|i| i + offset);
    match (colon, at) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (None, Some(at)) => (
            image[..at].to_string(),
            String::new(),
            image[at + 1..].to_string(),
        ),
        (Some(c), Some(at)) if at < c => (
            image[..at].to_string(),
            String::new(),
            image[at + 1..].to_string(),
        ),
        (Some(c), Some(at)) => (
            image[..c].to_string(),
            image[c + 1..at].to_string(),
            image[at + 1..].to_string(),
        ),
        (Some(c), None) => (
            image[..c].to_string(),
            image[c + 1..].to_string(),
            String::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain name matches exactly the images its regular expression would.
    #[test]
    fn plain_names_match_as_their_regex_does() {
        let images = [
            "acme/web",
            "acme/web:1.2",
            "acme/web:1.2@sha256:abc",
            "acme/web@sha256:abc",
            "acme/web:",
            "acme/web:1:2",
            "acme/web@sha1:abc",
            "acme/web2",
            "acme/webX",
            "acmeXweb:v{1}",
            "acme/web:t@sha256:a@sha256:b",
            "acme/we",
        ];
        for name in ["acme/web", "acme.web", "acme/we."] {
            let spec = spec(name, "", "", "");
            let plain = Rewrite::new(&spec).unwrap();
            assert!(matches!(plain.name, ImageName::Plain(_)));
            let regex = Regex::new(&format!(
                "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
            ))
            .unwrap();
            for image in images {
                assert_eq!(
                    plain.name.is_match(image),
                    regex.is_match(image),
                    "{name} on {image}"
                );
            }
        }
    }

    fn spec(name: &str, new_name: &str, new_tag: &str, digest: &str) -> ImageSpec {
        ImageSpec {
            name: name.into(),
            new_name: new_name.into(),
            new_tag: new_tag.into(),
            digest: digest.into(),
            tag_suffix: String::new(),
        }
    }

    #[test]
    fn splits_registry_ports_tags_and_digests() {
        assert_eq!(
            split("localhost:5000/app:v1"),
            ("localhost:5000/app".into(), "v1".into(), String::new())
        );
        assert_eq!(
            split("app@sha256:abc"),
            ("app".into(), String::new(), "sha256:abc".into())
        );
        assert_eq!(
            split("app:v1@sha256:abc"),
            ("app".into(), "v1".into(), "sha256:abc".into())
        );
        assert_eq!(split("app"), ("app".into(), String::new(), String::new()));
    }

    #[test]
    fn rewrites_name_tag_and_digest_like_kustomize() {
        assert_eq!(
            rewrite("nginx:1.0", &spec("nginx", "", "2.0", "")),
            "nginx:2.0"
        );
        assert_eq!(
            rewrite("nginx:1.0", &spec("nginx", "", "", "sha256:x")),
            "nginx@sha256:x"
        );
        assert_eq!(
            rewrite("nginx", &spec("nginx", "reg/nginx", "", "")),
            "reg/nginx"
        );
        assert_eq!(
            rewrite("nginx:1", &spec("nginx", "", "2", "sha256:x")),
            "nginx:2@sha256:x"
        );
    }
}
