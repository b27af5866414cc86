//! Transformer configurations a kustomization adds to kustomize's defaults: `configurations`
//! files (field specs for `namePrefix`, `commonLabels`, `images`, `varReference`, name
//! references, … of custom kinds) and `crds` files (OpenAPI definitions whose
//! `x-kubernetes-*` extensions mark label selectors, annotations, identities and references).

use serde_json::{Map, Value};

use super::config::{Config, NameReference};
use super::error::{Position, RenderError};
use super::fieldspec::FieldSpec;
use super::resid::Gvk;
use super::yaml::{Schema, parse_documents};

/// The configuration a `configurations:` file holds, read as strictly as kustomize reads it.
pub fn parse_configuration(path: &str, text: &str) -> Result<Config, RenderError> {
    let (value, line) = first_document(path, text)?;
    let at = Where { path, line };
    let mut config = Config::default();
    for (key, value) in mapping(&at, "", &value)? {
        let field = canonical(
            key,
            &[
                "namePrefix",
                "nameSuffix",
                "namespace",
                "commonLabels",
                "labels",
                "templateLabels",
                "commonAnnotations",
                "nameReference",
                "varReference",
                "images",
                "replicas",
            ],
        )
        .ok_or_else(|| at.invalid(key, format!("unknown field `{key}`")))?;
        if field == "nameReference" {
            config.name_references = items(&at, field, value)?
                .iter()
                .enumerate()
                .map(|(i, v)| name_reference(&at, &format!("{field}[{i}]"), v))
                .collect::<Result<_, _>>()?;
            continue;
        }
        let specs = field_specs(&at, field, value)?;
        let list = match field {
            "namePrefix" => &mut config.name_prefix,
            "nameSuffix" => &mut config.name_suffix,
            "namespace" => &mut config.namespace,
            "commonLabels" => &mut config.common_labels,
            "labels" => &mut config.labels,
            "templateLabels" => &mut config.template_labels,
            "commonAnnotations" => &mut config.common_annotations,
            "varReference" => &mut config.var_reference,
            "images" => &mut config.images,
            _ => &mut config.replicas,
        };
        *list = specs;
    }
    Ok(config)
}

/// Where in a file a value was read, for messages.
struct Where<'a> {
    path: &'a str,
    line: usize,
}

impl Where<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> RenderError {
        RenderError::InvalidField {
            path: self.path.to_string(),
            line: self.line,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

fn first_document(path: &str, text: &str) -> Result<(Value, usize), RenderError> {
    let documents = parse_documents(text, Schema::Yaml11).map_err(|err| RenderError::Yaml {
        path: path.to_string(),
        position: Position {
            line: err.line,
            column: err.column,
        },
        message: err.message,
    })?;
    Ok(documents
        .into_iter()
        .next()
        .map_or((Value::Null, 1), |d| (d.value, d.line)))
}

/// `key` spelled as one of `known` (letter case aside, as kustomize's JSON decoding reads it).
fn canonical(key: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .find(|k| **k == key)
        .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)))
        .copied()
}

fn mapping<'v>(
    at: &Where<'_>,
    field: &str,
    value: &'v Value,
) -> Result<Vec<(&'v str, &'v Value)>, RenderError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => Ok(map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        _ => Err(at.invalid(field, "expected a mapping")),
    }
}

fn items<'v>(at: &Where<'_>, field: &str, value: &'v Value) -> Result<&'v [Value], RenderError> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(at.invalid(field, "expected a list")),
    }
}

fn text(at: &Where<'_>, field: &str, value: &Value) -> Result<String, RenderError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(at.invalid(field, "expected a string")),
    }
}

fn field_specs(at: &Where<'_>, field: &str, value: &Value) -> Result<Vec<FieldSpec>, RenderError> {
    items(at, field, value)?
        .iter()
        .enumerate()
        .map(|(i, v)| field_spec(at, &format!("{field}[{i}]"), v))
        .collect()
}

fn field_spec(at: &Where<'_>, field: &str, value: &Value) -> Result<FieldSpec, RenderError> {
    let mut spec = FieldSpec::default();
    for (key, value) in mapping(at, field, value)? {
        let known = ["path", "create", "group", "version", "kind"];
        let sub = format!("{field}.{key}");
        match canonical(key, &known) {
            Some("path") => spec.path = text(at, &sub, value)?.into(),
            Some("create") => {
                spec.create = match value {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    _ => return Err(at.invalid(&sub, "expected true or false")),
                }
            }
            Some(part) => set_gvk(&mut spec.gvk, part, text(at, &sub, value)?),
            None => return Err(at.invalid(field, format!("unknown field `{key}`"))),
        }
    }
    Ok(spec)
}

fn set_gvk(gvk: &mut Gvk, part: &str, text: String) {
    match part {
        "group" => gvk.group = text.into(),
        "version" => gvk.version = text.into(),
        _ => gvk.kind = text.into(),
    }
}

fn name_reference(
    at: &Where<'_>,
    field: &str,
    value: &Value,
) -> Result<NameReference, RenderError> {
    let mut reference = NameReference {
        referral: Gvk::default(),
        referrers: Vec::new(),
    };
    for (key, value) in mapping(at, field, value)? {
        let sub = format!("{field}.{key}");
        match canonical(key, &["group", "version", "kind", "fieldSpecs"]) {
            Some("fieldSpecs") => reference.referrers = field_specs(at, &sub, value)?,
            Some(part) => set_gvk(&mut reference.referral, part, text(at, &sub, value)?),
            None => return Err(at.invalid(field, format!("unknown field `{key}`"))),
        }
    }
    Ok(reference)
}

/// The configuration the OpenAPI definitions of a `crds:` file imply: for each definition
/// that looks like a Kubernetes kind (it has `apiVersion`, `kind` and `metadata`), properties
/// marked `x-kubernetes-annotation`, `x-kubernetes-label-selector` and
/// `x-kubernetes-identity`, and references marked `x-kubernetes-object-ref-kind` with
/// `x-kubernetes-object-ref-api-version`, following `$ref`s to other definitions.
pub fn parse_crds(path: &str, text: &str) -> Result<Config, RenderError> {
    let (value, _) = first_document(path, text)?;
    let Value::Object(definitions) = value else {
        return Err(RenderError::InvalidResource {
            path: path.to_string(),
            message: "unable to parse open API definition: expected a mapping of type names"
                .to_string(),
        });
    };
    let mut config = Config::default();
    for (name, definition) in &definitions {
        let properties = properties(definition);
        if !["kind", "apiVersion", "metadata"]
            .iter()
            .all(|key| properties.is_some_and(|p| p.contains_key(*key)))
        {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name);
        let gvk = Gvk {
            kind: kind.to_string().into(),
            ..Gvk::default()
        };
        let mut found = Config::default();
        let mut walk = CrdWalk {
            definitions: &definitions,
            gvk: &gvk,
            config: &mut found,
            seen: Vec::new(),
        };
        walk.load(name, &[]);
        config = config
            .merged(&found)
            .map_err(|err| RenderError::InvalidResource {
                path: path.to_string(),
                message: err,
            })?;
    }
    Ok(config)
}

/// `Schema.properties` of a definition (the key `Schema` in any letter case).
fn properties(definition: &Value) -> Option<&Map<String, Value>> {
    let map = definition.as_object()?;
    let schema = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))
        .map(|(_, v)| v)?;
    schema.get("properties")?.as_object()
}

struct CrdWalk<'a> {
    definitions: &'a Map<String, Value>,
    gvk: &'a Gvk,
    config: &'a mut Config,
    /// Definitions on the current `$ref` chain, so a recursive type ends.
    seen: Vec<String>,
}

impl CrdWalk<'_> {
    fn load(&mut self, name: &str, path: &[String]) {
        if self.seen.iter().any(|s| s == name) {
            return;
        }
        let Some(properties) = self.definitions.get(name).and_then(properties) else {
            return;
        };
        self.seen.push(name.to_string());
        for (property, schema) in properties {
            let mut here = path.to_vec();
            here.push(property.clone());
            let spec = |path: &[String]| FieldSpec {
                gvk: self.gvk.clone(),
                path: path.join("/").into(),
                create: false,
            };
            if extension(schema, "x-kubernetes-annotation").is_some() {
                add(&mut self.config.common_annotations, spec(&here));
            }
            if extension(schema, "x-kubernetes-label-selector").is_some() {
                add(&mut self.config.common_labels, spec(&here));
            }
            if extension(schema, "x-kubernetes-identity").is_some() {
                add(&mut self.config.name_prefix, spec(&here));
            }
            let version = extension(schema, "x-kubernetes-object-ref-api-version");
            let kind = extension(schema, "x-kubernetes-object-ref-kind");
            if let (Some(version), Some(kind)) = (version, kind) {
                let key = extension(schema, "x-kubernetes-object-ref-name-key").unwrap_or("name");
                let mut field = here.clone();
                field.push(key.to_string());
                self.reference(kind, version, spec(&field));
            }
            if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
                self.load(target, &here);
            }
        }
        self.seen.pop();
    }

    fn reference(&mut self, kind: &str, version: &str, spec: FieldSpec) {
        let referral = Gvk {
            group: String::new().into(),
            version: version.to_string().into(),
            kind: kind.to_string().into(),
        };
        match self
            .config
            .name_references
            .iter_mut()
            .find(|r| r.referral == referral)
        {
            Some(known) => add(&mut known.referrers, spec),
            None => self.config.name_references.push(NameReference {
                referral,
                referrers: vec![spec],
            }),
        }
    }
}

fn add(list: &mut Vec<FieldSpec>, spec: FieldSpec) {
    if !list.contains(&spec) {
        list.push(spec);
    }
}

/// A string-valued vendor extension (its key in any letter case, as OpenAPI readers store it).
fn extension<'v>(schema: &'v Value, key: &str) -> Option<&'v str> {
    schema
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_configuration_files_strictly() {
        let config = parse_configuration(
            "c.yaml",
            "nameReference:\n- kind: Secret\n  fieldSpecs:\n  - {kind: Db, path: spec/secret}\nimages:\n- {kind: Db, path: spec/image}\n",
        )
        .expect("valid");
        assert_eq!(config.name_references[0].referral.kind, "Secret");
        assert_eq!(config.images[0].path, "spec/image");
        let err =
            parse_configuration("c.yaml", "images:\n- {kind: Db, pth: x}\n").expect_err("bad");
        assert_eq!(
            err.to_string(),
            "c.yaml:1: invalid `images[0]`: unknown field `pth`"
        );
    }

    #[test]
    fn merging_keeps_one_of_each_spec_and_refuses_conflicts() {
        let spec = |create| FieldSpec::new("", "", "Db", "spec/labels", create);
        let a = Config {
            common_labels: vec![spec(true)],
            ..Config::default()
        };
        let same = a.merged(&a).expect("same");
        assert_eq!(same.common_labels.len(), 1);
        let b = Config {
            common_labels: vec![spec(false)],
            ..Config::default()
        };
        let err = a.merged(&b).expect_err("conflict");
        assert_eq!(
            err,
            "failed to merge CommonLabels fieldSpec: conflicting fieldspecs"
        );
    }

    #[test]
    fn crd_definitions_mark_references_through_refs() {
        let text = r##"{"example.com/v1.Db": {"Schema": {"properties": {
            "apiVersion": {}, "kind": {}, "metadata": {},
            "spec": {"$ref": "example.com/v1.DbSpec"}}}},
          "example.com/v1.DbSpec": {"Schema": {"properties": {
            "credentials": {"x-kubernetes-object-ref-kind": "Secret",
                            "x-kubernetes-object-ref-api-version": "v1"},
            "selector": {"x-kubernetes-label-selector": ""}}}}}"##;
        let config = parse_crds("crd.json", text).expect("valid");
        let reference = &config.name_references[0];
        assert_eq!(reference.referral.kind, "Secret");
        assert_eq!(reference.referrers[0].path, "spec/credentials/name");
        assert_eq!(reference.referrers[0].gvk.kind, "Db");
        assert_eq!(config.common_labels[0].path, "spec/selector");
    }
}
