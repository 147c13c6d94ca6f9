//! The stable-Rust fuzz driver shared by the fuzz targets: proptest strategies give structure-aware
//! inputs (operator keys, nested documents, regex-like strings), a loop runs a target for a time budget,
//! `catch_unwind` turns a panic into a reported input, and an input slower than [`SLOW_INPUT`] counts as a
//! hang. No nightly toolchain, no new dependencies.

#![allow(dead_code)]

use std::fmt::Debug;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Number, Value};

/// One input taking longer than this is a hang.
pub const SLOW_INPUT: Duration = Duration::from_secs(2);

/// The time budget per target: `FUZZ_SECONDS`, default 1 s (the smoke run in `cargo test`).
pub fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds.max(0.05))
}

/// Runs `target` on inputs from `strategy` until the budget is spent; panics (failing the test) with the
/// first input that panicked or hung. With `FUZZ_RESULTS` set, appends `{target, execs, seconds}` to
/// that JSON Lines file.
pub fn fuzz<S: Strategy>(name: &str, strategy: S, target: impl Fn(&S::Value))
where
    S::Value: Debug,
{
    // A fixed seed per run of `cargo test` would find nothing new; FUZZ_SEED makes a run repeatable.
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(rand_seed);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let budget = budget();
    let started = Instant::now();
    let mut execs: u64 = 0;
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // panics are reported below, with their input
    let mut failure = None;
    while started.elapsed() < budget {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        let one = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let took = one.elapsed();
        execs += 1;
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failure = Some(format!("panicked ({message}) on input {input:?}"));
            break;
        }
        if took > SLOW_INPUT {
            failure = Some(format!("took {took:?} (a hang) on input {input:?}"));
            break;
        }
    }
    std::panic::set_hook(previous_hook);
    let seconds = started.elapsed().as_secs_f64();
    println!("fuzz {name}: {execs} execs in {seconds:.1} s (seed {seed})");
    if let Ok(path) = std::env::var("FUZZ_RESULTS") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(
                file,
                "{{\"target\":\"{name}\",\"execs\":{execs},\"seconds\":{seconds:.1},\"seed\":{seed},\"failed\":{}}}",
                failure.is_some()
            );
        }
    }
    if let Some(failure) = failure {
        panic!("fuzz {name} (seed {seed}): {failure}");
    }
}

fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (std::process::id() as u64).rotate_left(32)
}

/// Keys that reach the engine's operator code, plus plain and dotted field names.
const KEYS: &[&str] = &[
    "a",
    "b",
    "c",
    "a.b",
    "b.0",
    "a.b.c",
    "_id",
    "_openid",
    "0",
    "1",
    "",
    "$",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$eq",
    "$ne",
    "$in",
    "$nin",
    "$all",
    "$elemMatch",
    "$exists",
    "$size",
    "$mod",
    "$regex",
    "$options",
    "$not",
    "$and",
    "$or",
    "$nor",
    "$expr",
    "$type",
    "$date",
    "$numberLong",
    "$numberDecimal",
    "$oid",
    "$timestamp",
    "$minKey",
    "$maxKey",
    "offset",
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$bit",
    "$push",
    "$pop",
    "$pull",
    "$pullAll",
    "$addToSet",
    "$each",
    "$slice",
    "$sort",
    "$position",
    "$currentDate",
    "$geometry",
    "$nearSphere",
    "$geoWithin",
    "$geoIntersects",
    "$maxDistance",
    "$minDistance",
    "type",
    "coordinates",
    "$sum",
    "$avg",
    "$first",
    "$last",
    "$push",
    "$add",
    "$subtract",
    "$multiply",
    "$divide",
    "$concat",
    "$substr",
    "$cond",
    "$ifNull",
    "$switch",
    "$map",
    "$filter",
    "$reduce",
    "$let",
    "$literal",
    "$arrayElemAt",
    "$range",
    "$split",
    "$dateToString",
    "$toInt",
    "$convert",
    "_id.a",
    "from",
    "localField",
    "foreignField",
    "as",
    "groupBy",
    "boundaries",
    "default",
    "output",
    "buckets",
    "newRoot",
    "size",
    "path",
    "includeArrayIndex",
    "preserveNullAndEmptyArrays",
    "near",
    "distanceField",
    "spherical",
    "and",
    "or",
];

/// Strings that stress parsers: regex syntax (catastrophic patterns included), paths, unicode, escapes.
const STRINGS: &[&str] = &[
    "",
    "a",
    "x",
    "$a",
    "$$ROOT",
    "$$CURRENT",
    "$a.b",
    "(a+)+$",
    "(a|aa)*b",
    "^(\\w+\\s?)*$",
    "[",
    "\\",
    "a{1000000}",
    "(?i)ABC",
    ".*",
    "\u{0}",
    "é",
    "💥",
    "a.b",
    "..",
    "0",
    "-1",
    "1e309",
    "NaN",
    "i",
    "m",
    "s",
    "x",
    "imsx",
    "int",
    "string",
    "double",
    "date",
    "object",
    "array",
    "null",
    "cloud://env.bucket/a/b",
    "cloud://",
    "a//b",
    "/a",
    "a/",
    "%2e%2e/x",
    "../x",
    "UTC",
    "%Y-%m-%d",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..20).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| Value::from(s.to_owned())),
        "[a-z$.]{0,6}".prop_map(Value::from),
    ]
}

/// JSON values up to 6 levels deep, objects keyed from the operator vocabulary.
pub fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                let mut map = Map::new();
                for (key, value) in entries {
                    map.insert(key.to_owned(), value);
                }
                Value::Object(map)
            }),
        ]
    })
}

/// Arbitrary text, biased towards the interesting strings and the characters parsers branch on.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-z0-9_./:%\\\\\\-\\[\\]()'\"=!&|<> ]{0,60}",
        prop::collection::vec(prop::sample::select(STRINGS), 0..6).prop_map(|parts| parts.concat()),
    ]
}

/// Arbitrary bytes, and mutations of `seeds` (bit flips, cuts, splices, repeats).
pub fn bytes_from(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seeds_for_mutation = seeds.clone();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (
            prop::sample::select(seeds),
            prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..5), 0..8)
        )
            .prop_map(|(seed, edits)| mutate(seed, &edits)),
        (
            prop::sample::select(seeds_for_mutation),
            any::<usize>(),
            1usize..200
        )
            .prop_map(|(seed, at, repeat)| {
                let at = if seed.is_empty() { 0 } else { at % seed.len() };
                let mut out = seed[..at].to_vec();
                for _ in 0..repeat {
                    out.extend_from_slice(&seed[at..(at + 8).min(seed.len())]);
                }
                out.extend_from_slice(&seed[at..]);
                out
            }),
    ]
}

fn mutate(mut seed: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, kind) in edits {
        if seed.is_empty() {
            seed.push(byte);
            continue;
        }
        let at = at % seed.len();
        match kind {
            0 => seed[at] ^= 1 << (byte % 8),
            1 => seed[at] = byte,
            2 => {
                seed.insert(at, byte);
            }
            3 => {
                seed.remove(at);
            }
            _ => seed.truncate(at),
        }
    }
    seed
}
