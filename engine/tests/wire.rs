//! The engine driven by the exact `query` / `data` / `order` payloads the official SDK sent
//! (shared/reference/captures, protocol.md §5.3–5.5), as the storage layer will call it.

use cloud_engine::{
    apply_update, prepare_document, replace_document, sort_by_distance, Matcher, Projection,
    SortSpec,
};
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_500_000;

fn select(docs: &[Value], query: &Value) -> Vec<Value> {
    let matcher = Matcher::new(query).unwrap();
    docs.iter()
        .filter(|d| matcher.matches(d).unwrap())
        .cloned()
        .collect()
}

fn ids(docs: &[Value]) -> Vec<&str> {
    docs.iter().map(|d| d["_id"].as_str().unwrap()).collect()
}

#[test]
fn cloudapi_session_add_get_update_set() {
    // database.addDocument
    let data = json!({"title": "t", "created": {"$date": {"offset": 0}}, "due": {"$date": 1700000000000_i64},
                      "geo": {"type": "Point", "coordinates": [113.3, 23.1]}, "nested": {"x": 1}});
    let mut doc = prepare_document(&data, NOW).unwrap();
    doc.as_object_mut()
        .unwrap()
        .insert("_id".into(), json!("doc1"));
    assert_eq!(doc["created"], json!({"$date": NOW}));

    // database.queryDocument, queryType DOC, projection {}
    let found = select(std::slice::from_ref(&doc), &json!({"_id": "doc1"}));
    assert_eq!(found.len(), 1);
    assert_eq!(
        Projection::new(&json!({}))
            .unwrap()
            .apply(&found[0])
            .unwrap(),
        doc
    );

    // database.updateDocument merge:true
    let update = json!({"$inc": {"n": 1}, "$push": {"arr": {"$each": ["x", "y"]}}, "$unset": {"gone": ""},
                        "$set": {"ts": {"$date": {"offset": 1000}}, "obj.k": "v"}});
    let updated = apply_update(&doc, &update, NOW).unwrap();
    assert_eq!(updated["n"], json!(1));
    assert_eq!(updated["arr"], json!(["x", "y"]));
    assert_eq!(updated["ts"], json!({"$date": NOW + 1000}));
    assert_eq!(updated["obj"], json!({"k": "v"}));
    assert_eq!(updated["nested"], json!({"x": 1}));

    // database.updateDocument merge:false (doc.set)
    let replaced = replace_document(&updated, &json!({"title": "replaced", "n": 5}), NOW).unwrap();
    assert_eq!(
        replaced,
        json!({"_id": "doc1", "title": "replaced", "n": 5})
    );
}

#[test]
fn where_update_count_and_delete_queries() {
    let docs = vec![
        json!({"_id": "1", "done": false, "stats": {"views": 1}}),
        json!({"_id": "2", "done": true}),
        json!({"_id": "3", "done": false}),
    ];
    let targets = select(&docs, &json!({"done": false}));
    assert_eq!(ids(&targets), ["1", "3"]);
    let update = json!({"$set": {"done": true}, "$inc": {"stats.views": 2}});
    let after: Vec<Value> = docs
        .iter()
        .map(|d| {
            if targets.contains(d) {
                apply_update(d, &update, NOW).unwrap()
            } else {
                d.clone()
            }
        })
        .collect();
    assert_eq!(
        after[0],
        json!({"_id": "1", "done": true, "stats": {"views": 3}})
    );
    assert_eq!(
        after[2],
        json!({"_id": "3", "done": true, "stats": {"views": 2}})
    );
    assert_eq!(
        select(&after, &json!({"done": true})).len(),
        3,
        "countDocument {{done:true}}"
    );
}

#[test]
fn captured_where_query_with_order() {
    let query = json!({"done": false, "tags": {"$in": ["a", "b"]}, "prop.mem": {"$gte": 4},
        "name": {"$regex": "^ab", "$options": "i"}, "when": {"$lt": {"$date": 1700000000000_i64}},
        "$and": [{"age": {"$gt": 18}}, {"age": {"$lt": 60}}]});
    let base = json!({"done": false, "tags": ["b", "z"], "prop": {"mem": 4}, "name": "ABle",
                      "when": {"$date": 1600000000000_i64}, "age": 30});
    let with = |id: &str, key: &str, v: Value| {
        let mut d = base.clone();
        d["_id"] = json!(id);
        d[key] = v;
        d
    };
    let docs = vec![
        with("young", "age", json!(18)),
        with("ok30", "age", json!(30)),
        with("ok59", "age", json!(59.5)),
        with("late", "when", json!({"$date": 1700000000000_i64})),
        with("tagless", "tags", json!(["c"])),
        with("lowmem", "prop", json!({"mem": 3})),
        with("name", "name", json!("xab")),
        with("done", "done", json!(true)),
        with("ok40", "age", json!(40)),
    ];
    let mut hits = select(&docs, &query);
    SortSpec::from_order(&json!([{"field": "age", "direction": "desc"}]))
        .unwrap()
        .sort(&mut hits);
    assert_eq!(ids(&hits), ["ok59", "ok40", "ok30"]);
    // The capture's projection {"a":1,"b":0} mixes inclusion and exclusion: MongoDB rejects it.
    assert_eq!(
        Projection::new(&json!({"a": 1, "b": 0})).unwrap_err().code,
        "INVALID_PARAM"
    );
}

#[test]
fn captured_operator_queries() {
    let q = json!({"a": {"$ne": 1}, "b": {"$nin": [1, 2]}, "c": {"$all": ["x", "y"]},
                   "d": {"$elemMatch": {"k": {"$gt": 1}}}, "e": {"$size": 3}, "f": {"$mod": [4, 1]}});
    let good = json!({"_id": "g", "c": ["y", "x", "z"], "d": [{"k": 0}, {"k": 2}], "e": [1, 2, 3], "f": 9});
    let bad =
        json!({"_id": "b", "a": [0, 1], "c": ["y", "x"], "d": [{"k": 2}], "e": [1, 2, 3], "f": 9});
    assert_eq!(ids(&select(&[good, bad], &q)), ["g"]);

    let q = json!({"a": {"$not": {"$gt": 5}}, "b": {"$exists": false}});
    let docs = [
        json!({"_id": "1", "a": 5}),
        json!({"_id": "2", "a": 6}),
        json!({"_id": "3"}),
        json!({"_id": "4", "b": null}),
    ];
    assert_eq!(ids(&select(&docs, &q)), ["1", "3"]);

    let docs = [
        json!({"_id": "1", "a": 1}),
        json!({"_id": "2", "b": 2}),
        json!({"_id": "3", "a": 2, "b": 1}),
    ];
    assert_eq!(
        ids(&select(&docs, &json!({"$nor": [{"a": 1}, {"b": 2}]}))),
        ["3"]
    );
    assert_eq!(
        ids(&select(
            &docs,
            &json!({"$and": [{"a": {"$gt": 1}}, {"b": {"$lt": 2}}]})
        )),
        ["3"]
    );
    assert_eq!(
        ids(&select(
            &docs,
            &json!({"$or": [{"a": {"$gt": 1}}, {"a": {"$lt": -1}}]})
        )),
        ["3"]
    );
    assert_eq!(
        ids(&select(
            &docs,
            &json!({"$or": [{"a": 1}, {"b": {"$exists": true}}]})
        )),
        ["1", "2", "3"]
    );

    let docs = [
        json!({"_id": "1", "arr": [1, 2], "nested": {"deep": {"x": 1}}}),
        json!({"_id": "2", "arr": [2, 1], "nested": {"deep": {"x": 1}}}),
    ];
    assert_eq!(
        ids(&select(&docs, &json!({"arr": [1, 2], "nested.deep.x": 1}))),
        ["1"]
    );
}

#[test]
fn captured_geo_queries() {
    let point = |id: &str, lng: f64, lat: f64| json!({"_id": id, "loc": {"type": "Point", "coordinates": [lng, lat]}});
    let docs = [
        point("far", 113.0, 23.02),
        point("mid", 113.005, 23.0),
        point("near", 113.001, 23.0),
        point("x", 50.0, 50.0),
    ];
    let query = json!({"loc": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [113, 23]},
                                               "$maxDistance": 1000, "$minDistance": 0}}});
    let matcher = Matcher::new(&query).unwrap();
    let mut hits: Vec<Value> = docs
        .iter()
        .filter(|d| matcher.matches(d).unwrap())
        .cloned()
        .collect();
    sort_by_distance(&mut hits, matcher.near().unwrap());
    assert_eq!(ids(&hits), ["near", "mid"]);

    let within = json!({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon",
                                                             "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 0]]]}}}});
    let docs = vec![point("in", 2.0, 1.0), point("out", 1.0, 2.0)];
    assert_eq!(ids(&select(&docs, &within)), ["in"]);
}

#[test]
fn captured_updates_apply_to_a_fresh_document() {
    let doc = json!({"_id": "x", "a": [3], "b": [1, 3, 3], "cc": [1, 2, 5], "d": [4], "e": [1, 2], "f": [1, 2],
                     "g": [9], "h": 2, "i": 5, "j": 5, "k": "renamed"});
    let first = json!({"$push": {"a": {"$each": [1, 2], "$position": 0, "$sort": -1, "$slice": 5},
                                 "g": {"$each": [7, 8], "$position": 0}},
                       "$pull": {"b": 3}, "$pullAll": {"cc": [1, 2]}, "$addToSet": {"d": 4}, "$pop": {"e": 1, "f": -1}});
    let out = apply_update(&doc, &first, NOW).unwrap();
    assert_eq!(
        out,
        json!({"_id": "x", "a": [3, 2, 1], "b": [1], "cc": [5], "d": [4], "e": [1], "f": [2],
                           "g": [7, 8, 9], "h": 2, "i": 5, "j": 5, "k": "renamed"})
    );
    let second = json!({"$mul": {"h": 2}, "$min": {"i": 1}, "$max": {"j": 9}, "$rename": {"k": "k2"},
                        "$set": {"l": {"whole": "object"}, "m": {"$date": 1700000000000_i64}, "n": null}});
    let out = apply_update(&out, &second, NOW).unwrap();
    assert_eq!(out["h"], json!(4));
    assert_eq!((out["i"].clone(), out["j"].clone()), (json!(1), json!(9)));
    assert_eq!(out.get("k"), None);
    assert_eq!(out["k2"], json!("renamed"));
    assert_eq!(out["l"], json!({"whole": "object"}));
    assert_eq!(out["m"], json!({"$date": 1700000000000_i64}));
    assert_eq!(out["n"], Value::Null);
    // The same updates on a document without those fields: created, or no-ops where MongoDB does nothing.
    let fresh = apply_update(&json!({"_id": "y"}), &first, NOW).unwrap();
    assert_eq!(
        fresh,
        json!({"_id": "y", "a": [2, 1], "d": [4], "g": [7, 8]})
    );
}

#[test]
fn extreme_operands_are_handled_without_panics() {
    let doc = json!({"_id": "e", "a": [1, 2, 3], "n": i64::MAX});
    let out = apply_update(
        &doc,
        &json!({"$push": {"a": {"$each": [0], "$position": i64::MIN, "$slice": i64::MIN}}}),
        0,
    )
    .unwrap();
    assert_eq!(out["a"], json!([0, 1, 2, 3]));
    let out = apply_update(
        &doc,
        &json!({"$push": {"a": {"$each": [], "$slice": i64::MAX}}}),
        0,
    )
    .unwrap();
    assert_eq!(out["a"], json!([1, 2, 3]));
    for slice in [
        json!(i64::MIN),
        json!(i64::MAX),
        json!([i64::MIN, i64::MAX]),
        json!([i64::MAX, i64::MAX]),
    ] {
        let p = Projection::new(&json!({"a": {"$slice": slice}})).unwrap();
        assert!(p.apply(&doc).unwrap()["a"].is_array());
    }
    assert!(apply_update(&doc, &json!({"$mul": {"n": i64::MAX}}), 0).unwrap()["n"].is_f64());
    assert!(Matcher::new(&json!({"n": {"$mod": [-1, 0]}}))
        .unwrap()
        .matches(&json!({"n": i64::MIN}))
        .unwrap());
    assert!(
        apply_update(&doc, &json!({"$set": {"a.99999999999": 1}}), 0).is_err(),
        "no giant padding"
    );
}
