//! Fuzzing on stable Rust: structure-aware random inputs (proptest's generators, driven by hand for a time
//! budget instead of a case count) for the engine's hostile-input surfaces: EJSON literals and server dates,
//! the query matcher, update operators, projections and sorts, aggregation pipelines (against a real store),
//! rule presets and custom rule expressions, and the protocol's cloudPath / fileID parsers.
//!
//! Each target must never panic and never take longer than [`SLOW_INPUT`] on one input; an error result is
//! fine (that is the engine refusing bad input). A failing input is printed as JSON, to become a test in
//! `regressions` below. Budget per target: `FUZZ_SECONDS` (default 1 s: the smoke run of `cargo test`);
//! `make fuzz` runs each for longer and records execs per target in bench/results/fuzz.json.

mod fuzzing;

use cloud_engine::rules::{Caller, Operation, Rules, UserCtx};
use cloud_engine::store::DocStore;
use cloud_engine::{apply_update, resolve_server_dates, Matcher, Projection, SortSpec};
use fuzzing::{fuzz, json_value, text};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

#[test]
fn fuzz_ejson_and_server_dates() {
    fuzz("ejson", json_value(), |value| {
        let mut value = value.clone();
        resolve_server_dates(&mut value, 1_700_000_000_000);
        let _ = cloud_engine::update::prepare_document(&value, 1_700_000_000_000);
    });
}

#[test]
fn fuzz_matcher() {
    fuzz("matcher", (json_value(), json_value()), |(query, doc)| {
        if let Ok(matcher) = Matcher::new(query) {
            let _ = matcher.matches(doc);
        }
    });
}

#[test]
fn fuzz_update_operators() {
    fuzz("update", (json_value(), json_value()), |(update, doc)| {
        let _ = apply_update(doc, update, 0);
        let _ = cloud_engine::replace_document(doc, update, 0);
    });
}

#[test]
fn fuzz_projection_and_sort() {
    fuzz(
        "projection_sort",
        (json_value(), json_value(), json_value()),
        |(spec, order, doc)| {
            if let Ok(projection) = Projection::new(spec) {
                let _ = projection.apply(doc);
            }
            if let Ok(sort) = SortSpec::from_order(order) {
                let mut docs = vec![doc.clone(), spec.clone(), order.clone()];
                sort.sort(&mut docs);
            }
        },
    );
}

#[test]
fn fuzz_aggregation_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::open(dir.path()).unwrap();
    let meta = store
        .write(|t| t.create_collection("env", "c", &json!("READONLY"), &["a".to_owned()], 0))
        .unwrap();
    store
        .write(|t| {
            for (n, doc) in [
                json!({"_id": "1", "a": 1, "b": [1, 2, {"c": "x"}], "s": "hello"}),
                json!({"_id": "2", "a": "two", "b": {"c": [3]}, "d": {"$date": 5}}),
                json!({"_id": "3", "a": null, "_openid": "u1", "geo": {"type": "Point", "coordinates": [1, 2]}}),
            ]
            .iter()
            .enumerate()
            {
                let _ = n;
                t.insert(&meta, doc)?;
            }
            Ok(())
        })
        .unwrap();
    let stage = (
        prop::sample::select(vec![
            "$match",
            "$project",
            "$group",
            "$sort",
            "$limit",
            "$skip",
            "$unwind",
            "$addFields",
            "$count",
            "$bucket",
            "$bucketAuto",
            "$sortByCount",
            "$replaceRoot",
            "$sample",
            "$lookup",
            "$geoNear",
        ]),
        json_value(),
    );
    let user = Caller::User(UserCtx {
        openid: "u1".into(),
        uid: "u1".into(),
    });
    fuzz("aggregate", prop::collection::vec(stage, 0..5), |stages| {
        let stages: Vec<Value> = stages
            .iter()
            .map(|(key, value)| json!({"stageKey": key, "stageValue": value.to_string()}))
            .collect();
        let mut body = Map::new();
        body.insert("collectionName".into(), json!("c"));
        body.insert("stages".into(), Value::Array(stages));
        for caller in [&Caller::Admin, &user] {
            let _ = store.read(|t| cloud_engine::aggregate::run(t, caller, "env", "c", &body, 0));
        }
    });
}

#[test]
fn fuzz_rules() {
    let user = UserCtx {
        openid: "u1".into(),
        uid: "u1".into(),
    };
    let rule_text = prop_oneof![
        text(),
        prop::sample::select(vec![
            "auth.openid == doc._openid",
            "doc._openid == auth.openid && doc.a > 1",
            "auth != null || doc.public == true",
            "!(doc.a in ['x', 'y'])",
            "((((doc.a))))",
            "doc.a.b.c == 'x' && auth.uid != null",
        ])
        .prop_map(str::to_owned),
    ];
    fuzz(
        "rules",
        (rule_text, json_value(), json_value()),
        |(text, query, doc)| {
            let rules = json!({"read": text, "write": text});
            for value in [rules, query.clone()] {
                if let Ok(rules) = Rules::parse(&value) {
                    for op in [Operation::Read, Operation::Update, Operation::Delete] {
                        let _ = rules.decide(op, &user, query, false);
                        let _ = rules.allows_document(op, &user, doc);
                    }
                }
            }
        },
    );
}

#[test]
fn fuzz_cloud_path_and_file_id() {
    fuzz("cloud_path_file_id", text(), |text| {
        let _ = cloud_protocol::storage::validate_cloud_path(text);
        if let Some(id) = cloud_protocol::storage::parse_file_id(text) {
            let _ = format!("{id:?}");
        }
        let _ = cloud_protocol::storage::parse_file_id(&format!("cloud://{text}"));
    });
}

/// Inputs the fuzzers found that once misbehaved, kept as plain tests.
mod regressions {}
