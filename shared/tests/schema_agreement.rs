//! The Rust decoder and the published JSON Schema judge the shared example
//! bodies alike, so that other languages validating with the schema publish
//! exactly what workers accept.

use std::fs;
use std::path::{Path, PathBuf};

use ingest_shared::job::{IngestJob, Limits, MAX_BODY_BYTES};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema")
}

fn validator() -> jsonschema::Validator {
    let text = fs::read_to_string(schema_dir().join("ingest-job.v1.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn examples(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<_> = fs::read_dir(schema_dir().join("examples").join(kind))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| (path.display().to_string(), fs::read(&path).unwrap()))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no examples in {kind}/");
    found
}

fn schema_accepts(validator: &jsonschema::Validator, body: &[u8]) -> bool {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    validator.is_valid(&value)
}

#[test]
fn valid_examples_pass_both_the_schema_and_the_decoder() {
    let validator = validator();
    for (name, body) in examples("valid") {
        assert!(schema_accepts(&validator, &body), "schema rejects {name}");
        if let Err(err) = IngestJob::decode(&body, &Limits::default()) {
            panic!("decoder rejects {name}: {err}");
        }
    }
}

#[test]
fn invalid_examples_fail_both_the_schema_and_the_decoder() {
    let validator = validator();
    for (name, body) in examples("invalid") {
        assert!(!schema_accepts(&validator, &body), "schema accepts {name}");
        assert!(
            IngestJob::decode(&body, &Limits::default()).is_err(),
            "decoder accepts {name}"
        );
    }
}

#[test]
fn semantic_examples_pass_the_schema_but_not_the_decoder() {
    let validator = validator();
    for (name, body) in examples("semantic") {
        assert!(schema_accepts(&validator, &body), "schema rejects {name}");
        assert!(
            IngestJob::decode(&body, &Limits::default()).is_err(),
            "decoder accepts {name}"
        );
    }
}

#[test]
fn bodies_over_64_kib_are_rejected_even_when_the_schema_accepts_them() {
    let mut value: serde_json::Value = serde_json::from_slice(&examples("valid")[0].1).unwrap();
    value["padding"] = serde_json::Value::from("x".repeat(MAX_BODY_BYTES));
    let body = serde_json::to_vec(&value).unwrap();
    assert!(validator().is_valid(&value));
    assert!(IngestJob::decode(&body, &Limits::default()).is_err());
}

#[test]
fn encoded_jobs_satisfy_the_schema() {
    let job = IngestJob::decode(&examples("valid")[0].1, &Limits::default()).unwrap();
    assert!(schema_accepts(&validator(), &job.to_body()));
}
