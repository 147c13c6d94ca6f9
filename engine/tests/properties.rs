//! Property tests of the document engine: complements, equivalences, order laws and round trips.

use cloud_engine::value::{get_path, split_path};
use cloud_engine::{apply_update, compare_values, values_equal, Matcher, Projection, SortSpec};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-4i64..5).prop_map(Value::from),
        (-8i32..9).prop_map(|h| Value::from(f64::from(h) / 2.0)),
        prop::sample::select(vec!["", "a", "ab", "b", "B", "abc"]).prop_map(Value::from),
        (0i64..4).prop_map(|ms| json!({"$date": ms})),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c"]), inner, 0..3)
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "c", "d"]),
        value(),
        0..4,
    )
    .prop_map(|m| {
        let mut map = Map::new();
        map.insert("_id".to_owned(), json!("id"));
        map.extend(m.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Value::Object(map)
    })
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "a.b", "a.c", "b.a", "a.0", "c.b.a"])
        .prop_map(str::to_owned)
}

/// An operator object usable as a field predicate.
fn predicate() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        scalar().prop_map(|v| json!({"$eq": v})),
        scalar().prop_map(|v| json!({"$ne": v})),
        scalar().prop_map(|v| json!({"$gt": v})),
        scalar().prop_map(|v| json!({"$gte": v})),
        scalar().prop_map(|v| json!({"$lt": v})),
        scalar().prop_map(|v| json!({"$lte": v})),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$in": v})),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$nin": v})),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$all": v})),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (0usize..3).prop_map(|n| json!({"$size": n})),
        (1i64..4, 0i64..3).prop_map(|(d, r)| json!({"$mod": [d, r]})),
        prop::sample::select(vec!["^a", "b", "^$", "(?i)B"]).prop_map(|p| json!({"$regex": p})),
        prop::sample::select(vec!["string", "number", "array", "object", "null", "date"])
            .prop_map(|t| json!({"$type": t})),
        scalar().prop_map(|v| json!({"$elemMatch": {"$gte": v}})),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| inner.prop_map(|p| json!({"$not": p})))
}

fn matches(query: &Value, doc: &Value) -> bool {
    Matcher::new(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .matches(doc)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn not_is_the_complement(doc in document(), path in path(), pred in predicate()) {
        let plain = json!({ path.clone(): pred.clone() });
        let negated = json!({ path: {"$not": pred} });
        prop_assert_ne!(matches(&plain, &doc), matches(&negated, &doc));
        prop_assert_ne!(matches(&plain, &doc), matches(&json!({"$nor": [plain.clone()]}), &doc));
    }

    #[test]
    fn in_is_an_or_of_eq(doc in document(), path in path(), values in prop::collection::vec(scalar(), 1..4)) {
        let in_query = json!({ path.clone(): {"$in": values.clone()} });
        let branches: Vec<Value> = values.iter().map(|v| json!({ path.clone(): {"$eq": v} })).collect();
        prop_assert_eq!(matches(&in_query, &doc), matches(&json!({"$or": branches}), &doc));
        let nin_query = json!({ path: {"$nin": values} });
        prop_assert_ne!(matches(&in_query, &doc), matches(&nin_query, &doc));
    }

    #[test]
    fn and_is_conjunction(doc in document(), p1 in path(), q1 in predicate(), p2 in path(), q2 in predicate()) {
        let a = json!({ p1: q1 });
        let b = json!({ p2: q2 });
        prop_assert_eq!(
            matches(&json!({"$and": [a.clone(), b.clone()]}), &doc),
            matches(&a, &doc) && matches(&b, &doc)
        );
        prop_assert_eq!(
            matches(&json!({"$or": [a.clone(), b.clone()]}), &doc),
            matches(&a, &doc) || matches(&b, &doc)
        );
    }

    #[test]
    fn comparison_is_a_total_order(a in value(), b in value(), c in value()) {
        prop_assert_eq!(compare_values(&a, &b), compare_values(&b, &a).reverse());
        prop_assert_eq!(compare_values(&a, &a), Ordering::Equal);
        prop_assert_eq!(values_equal(&a, &b), compare_values(&a, &b) == Ordering::Equal);
        if compare_values(&a, &b) != Ordering::Greater && compare_values(&b, &c) != Ordering::Greater {
            prop_assert_ne!(compare_values(&a, &c), Ordering::Greater, "transitivity: {} {} {}", a, b, c);
        }
    }

    #[test]
    fn sort_orders_and_permutes(docs in prop::collection::vec(document(), 0..8), field in path(), desc in any::<bool>()) {
        let spec = SortSpec::from_order(&json!([{"field": field, "direction": if desc { "desc" } else { "asc" }}])).unwrap();
        let mut sorted = docs.clone();
        spec.sort(&mut sorted);
        prop_assert_eq!(sorted.len(), docs.len());
        for w in sorted.windows(2) {
            prop_assert_ne!(spec.compare(&w[0], &w[1]), Ordering::Greater);
        }
        for d in &docs {
            prop_assert_eq!(docs.iter().filter(|x| *x == d).count(), sorted.iter().filter(|x| *x == d).count());
        }
        // Stability: sorting again changes nothing.
        let mut again = sorted.clone();
        spec.sort(&mut again);
        prop_assert_eq!(again, sorted);
    }

    #[test]
    fn inc_round_trips(start in -1_000_000i64..1_000_000, n in -1_000_000i64..1_000_000, half in -100i32..100) {
        let doc = json!({"_id": 1, "x": start, "f": f64::from(half) / 2.0});
        let once = apply_update(&doc, &json!({"$inc": {"x": n, "f": n}}), 0).unwrap();
        let back = apply_update(&once, &json!({"$inc": {"x": -n, "f": -n}}), 0).unwrap();
        prop_assert_eq!(&back["x"], &json!(start));
        prop_assert!(values_equal(&back["f"], &doc["f"]));
    }

    #[test]
    fn set_then_get(doc in document(), path in path(), v in value()) {
        let update = json!({"$set": { path.clone(): v.clone() }});
        match apply_update(&doc, &update, 0) {
            Ok(out) => prop_assert_eq!(get_path(&out, &split_path(&path)), Some(&v)),
            // Only a scalar or array on the way may refuse the path (MongoDB "Cannot create field").
            Err(e) => {
                prop_assert_eq!(e.code, "INVALID_PARAM");
                let parts = split_path(&path);
                let blocked = (1..parts.len()).any(|i| matches!(
                    get_path(&doc, &parts[..i]),
                    Some(x) if !x.is_object() || x.get("$date").is_some()
                ));
                prop_assert!(blocked, "{} refused on {}: {}", path, doc, e);
            }
        }
    }

    #[test]
    fn projection_inclusion_and_exclusion_cover_keys(doc in document(), keys in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c", "d"]), 1..4)) {
        let include: Map<String, Value> = keys.iter().map(|k| (k.to_string(), json!(1))).collect();
        let exclude: Map<String, Value> = keys.iter().map(|k| (k.to_string(), json!(0))).collect();
        let inc = Projection::new(&Value::Object(include)).unwrap().apply(&doc).unwrap();
        let exc = Projection::new(&Value::Object(exclude)).unwrap().apply(&doc).unwrap();
        let all: Vec<&String> = doc.as_object().unwrap().keys().collect();
        for k in &all {
            let in_inc = inc.get(k.as_str()).is_some();
            let in_exc = exc.get(k.as_str()).is_some();
            prop_assert!(in_inc || in_exc, "{} lost", k);
            prop_assert!(k.as_str() == "_id" || in_inc != in_exc, "{} in both", k);
            prop_assert_eq!(inc.get(k.as_str()).or(exc.get(k.as_str())), doc.get(k.as_str()));
        }
    }

    #[test]
    fn arbitrary_queries_never_panic(query in value(), op in prop::sample::select(vec![
        "$eq", "$gt", "$in", "$all", "$elemMatch", "$exists", "$size", "$mod", "$regex", "$not", "$and", "$or",
        "$expr", "$geoWithin", "$geoIntersects", "$nearSphere", "$type", "$bogus"]), path in path(), doc in document()) {
        for q in [json!({ path.clone(): { op: query.clone() } }), json!({ op: query.clone() }), query.clone()] {
            if let Ok(m) = Matcher::new(&q) {
                let _ = m.matches(&doc);
            }
        }
    }

    #[test]
    fn arbitrary_updates_never_panic(operand in value(), op in prop::sample::select(vec![
        "$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename", "$push", "$pop", "$pull", "$pullAll",
        "$addToSet", "$bit", "$currentDate", "$bogus"]), path in path(), doc in document()) {
        let update = json!({ op: { path: operand } });
        if let Ok(out) = apply_update(&doc, &update, 0) {
            prop_assert_eq!(&out["_id"], &doc["_id"]);
        }
    }
}
